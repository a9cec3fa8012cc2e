/* split_cases.h - the sentence splitting rules as a table: language, text, expected sentences
 * separated by " | ". Used by test_align_split.c. */
#ifndef FLM_SPLIT_CASES_H
#define FLM_SPLIT_CASES_H

typedef struct split_case {
    int lang; /* FLM_LANG_* */
    const char *text;
    const char *want;
} split_case;

#define EN FLM_LANG_EN
#define ZH FLM_LANG_ZH
#define AUTO FLM_LANG_AUTO

static const split_case split_cases[] = {
    /* basic terminators */
    {EN, "Hello world.", "Hello world."},
    {EN, "Hello world. How are you?", "Hello world. | How are you?"},
    {EN, "Stop! Now.", "Stop! | Now."},
    {EN, "Is it? Yes it is.", "Is it? | Yes it is."},
    {EN, "First part; second part.", "First part; | second part."},
    {EN, "One. Two. Three.", "One. | Two. | Three."},
    {EN, "No final punctuation", "No final punctuation"},
    {EN, "Trailing spaces.   ", "Trailing spaces."},
    {EN, "   Leading spaces. Next one.", "Leading spaces. | Next one."},
    {EN, "Line one.\nLine two.", "Line one. | Line two."},
    {EN, "Tabs.\tHere.", "Tabs. | Here."},
    {EN, "What?! Really.", "What?! | Really."},
    {EN, "Wow!!! Amazing.", "Wow!!! | Amazing."},
    {EN, "Why?? I don't know.", "Why?? | I don't know."},
    {EN, "", ""},
    {EN, "   ", ""},
    {EN, ".", "."},
    {EN, "A sentence.B continues", "A sentence.B continues"},
    /* lowercase after a period: no split */
    {EN, "He said no. and then left.", "He said no. and then left."},
    {EN, "It works; it really does.", "It works; | it really does."},
    /* abbreviations */
    {EN, "Mr. Smith went home.", "Mr. Smith went home."},
    {EN, "Mrs. Jones and Dr. Who met.", "Mrs. Jones and Dr. Who met."},
    {EN, "Ask Prof. Lee. He knows.", "Ask Prof. Lee. | He knows."},
    {EN, "Meet me on Baker St. Tomorrow is fine.", "Meet me on Baker St. Tomorrow is fine."},
    {EN, "It was No. 5 on the list.", "It was No. 5 on the list."},
    {EN, "See Fig. 3 for details.", "See Fig. 3 for details."},
    {EN, "Apples, pears, etc. are fruit.", "Apples, pears, etc. are fruit."},
    {EN, "Apples, pears, etc. They are fruit.", "Apples, pears, etc. | They are fruit."},
    {EN, "Use tools, e.g. hammers.", "Use tools, e.g. hammers."},
    {EN, "Use tools, e.g. Hammers and saws.", "Use tools, e.g. Hammers and saws."},
    {EN, "That is, i.e. the end.", "That is, i.e. the end."},
    {EN, "The U.S. Army is large.", "The U.S. Army is large."},
    {EN, "He moved to the U.K. Last year.", "He moved to the U.K. Last year."},
    {EN, "J. K. Rowling wrote it.", "J. K. Rowling wrote it."},
    {EN, "George W. Bush spoke.", "George W. Bush spoke."},
    {EN, "Acme Inc. Makes things.", "Acme Inc. Makes things."},
    {EN, "It costs approx. Ten dollars.", "It costs approx. Ten dollars."},
    {EN, "He left at 5 p.m. and came back.", "He left at 5 p.m. and came back."},
    {EN, "He left at 5 p.m. We stayed.", "He left at 5 p.m. | We stayed."},
    {EN, "Wake up at 7 a.m. Then run.", "Wake up at 7 a.m. | Then run."},
    {EN, "Smith vs. Jones was a case.", "Smith vs. Jones was a case."},
    {EN, "I saw Sgt. Pepper. It was great.", "I saw Sgt. Pepper. | It was great."},
    {EN, "It is in Jan. Next year too.", "It is in Jan. Next year too."},
    {EN, "Got my Ph.D. Last May.", "Got my Ph.D. Last May."},
    /* decimals, numbers, times, URLs */
    {EN, "Pi is 3.14 roughly.", "Pi is 3.14 roughly."},
    {EN, "It grew 2.5 percent. Then it fell.", "It grew 2.5 percent. | Then it fell."},
    {EN, "Version 1.2.3 is out. Update now.", "Version 1.2.3 is out. | Update now."},
    {EN, "We meet at 10:30. Be there.", "We meet at 10:30. | Be there."},
    {EN, "Visit example.com today.", "Visit example.com today."},
    {EN, "Email me at a.b@c.org. Thanks.", "Email me at a.b@c.org. | Thanks."},
    {EN, "I was born in 1990. It was cold.", "I was born in 1990. | It was cold."},
    {EN, "It costs $5.99. Cheap.", "It costs $5.99. | Cheap."},
    {EN, "The value .5 is small.", "The value .5 is small."},
    /* ellipses */
    {EN, "Well... I don't know.", "Well... | I don't know."},
    {EN, "Well... maybe not.", "Well... maybe not."},
    {EN, "Wait\u2026 What happened?", "Wait\u2026 | What happened?"},
    {EN, "Wait\u2026 what happened?", "Wait\u2026 what happened?"},
    {EN, "And so on...", "And so on..."},
    {EN, "He said \"wait... No, go.\" Then left.", "He said \"wait... No, go.\" | Then left."},
    {EN, "She said \u201cwell\u2026 Maybe.\u201d We left.",
     "She said \u201cwell\u2026 Maybe.\u201d | We left."},
    /* quotes and brackets */
    {EN, "He said \"Stop!\" Then he left.", "He said \"Stop!\" | Then he left."},
    {EN, "\"Stop!\" he said.", "\"Stop!\" he said."},
    {EN, "\u201cGo now.\u201d She went.", "\u201cGo now.\u201d | She went."},
    {EN, "\u201cGo now,\u201d she said. We went.", "\u201cGo now,\u201d she said. | We went."},
    {EN, "He asked \"Why? How?\" and waited.", "He asked \"Why? How?\" and waited."},
    {EN, "(This is an aside.) Then more.", "(This is an aside.) | Then more."},
    {EN, "It ends here.) Odd bracket.", "It ends here.) | Odd bracket."},
    {EN, "An \"unbalanced quote. Still splits.", "An \"unbalanced quote. | Still splits."},
    {EN, "It's fine. It's good.", "It's fine. | It's good."},
    {EN, "'Single quotes.' Next.", "'Single quotes.' | Next."},
    /* other scripts after a terminator */
    {EN, "Done. 123 items left.", "Done. | 123 items left."},
    {EN, "Done. \u00c9t\u00e9 is summer.", "Done. | \u00c9t\u00e9 is summer."},
    {EN, "Stop. \u00e9t\u00e9 continues.", "Stop. \u00e9t\u00e9 continues."},
    {EN, "OK. - A dash follows.", "OK. | - A dash follows."},
    /* Chinese */
    {ZH, "你好。", "你好。"},
    {ZH, "你好。我很好。", "你好。 | 我很好。"},
    {ZH, "真的吗？是的！", "真的吗？ | 是的！"},
    {ZH, "第一句；第二句。", "第一句； | 第二句。"},
    {ZH, "他说：“你好。”然后走了。", "他说：“你好。” | 然后走了。"},
    {ZH, "他说：“等等……不要走。”我停下了。", "他说：“等等……不要走。” | 我停下了。"},
    {ZH, "等等……我来了。", "等等…… | 我来了。"},
    {ZH, "价格是3.5元。很便宜。", "价格是3.5元。 | 很便宜。"},
    {ZH, "现在是10:30。开会吧。", "现在是10:30。 | 开会吧。"},
    {ZH, "今天天气很好!我们去公园吧?", "今天天气很好! | 我们去公园吧?"},
    {ZH, "你好.我很好.", "你好. | 我很好."},
    {ZH, "这是第一句。 这是第二句。", "这是第一句。 | 这是第二句。"},
    {ZH, "没有标点的句子", "没有标点的句子"},
    {ZH, "「你好。」他说。", "「你好。」 | 他说。"},
    {ZH, "『好的！』她笑了。", "『好的！』 | 她笑了。"},
    {ZH, "（这是注释。）继续。", "（这是注释。） | 继续。"},
    {ZH, "什么？！太好了。", "什么？！ | 太好了。"},
    {ZH, "我喜欢苹果、香蕉和橙子。", "我喜欢苹果、香蕉和橙子。"},
    {ZH, "他说，好的。", "他说，好的。"},
    {ZH, "我用iPhone。你呢？", "我用iPhone。 | 你呢？"},
    {ZH, "我在U.S.工作。很忙。", "我在U.S.工作。 | 很忙。"},
    {ZH, "这是Mr. Li。他是老师。", "这是Mr. Li。 | 他是老师。"},
    {ZH, "版本是1.2.3。请更新。", "版本是1.2.3。 | 请更新。"},
    {ZH, "一。二。三。", "一。 | 二。 | 三。"},
    {ZH, "好吧……", "好吧……"},
    {ZH, "你说“好的！”我说“不！”", "你说“好的！” | 我说“不！”"},
    {ZH, "第一行。\n第二行。", "第一行。 | 第二行。"},
    {ZH, "全角句号．下一句。", "全角句号． | 下一句。"},
    {ZH, "Hello。你好。", "Hello。 | 你好。"},
    {ZH, "他问：为什么？我不知道。", "他问：为什么？ | 我不知道。"},
    /* language detection (AUTO) */
    {AUTO, "你好.我很好.", "你好. | 我很好."},
    {AUTO, "This is English. So is this.", "This is English. | So is this."},
    {AUTO, "Hi.你好", "Hi. | 你好"},
    {AUTO, "我们用AI.它很好。", "我们用AI. | 它很好。"},
};

/* Fragments with fewer than 3 letters/CJK characters are merged into a neighbour. */
static const split_case merge_cases[] = {
    {EN, "Oh. I see now.", "Oh. I see now."},
    {EN, "I see now. Oh.", "I see now. Oh."},
    {EN, "Yes. No. Maybe.", "Yes. No. | Maybe."},
    {EN, "Okay. Fine.", "Okay. | Fine."},
    {EN, "A. B. C.", "A. B. C."},
    {ZH, "嗯。我知道了。", "嗯。我知道了。"},
    {ZH, "我知道了。嗯。", "我知道了。嗯。"},
    {ZH, "好的。好。", "好的。好。"},
    {ZH, "好的呀。好。", "好的呀。好。"},
    {ZH, "好的呀。好啊呀。", "好的呀。 | 好啊呀。"},
    {ZH, "对。对。对。", "对。对。对。"},
};

#undef EN
#undef ZH
#undef AUTO

#endif
