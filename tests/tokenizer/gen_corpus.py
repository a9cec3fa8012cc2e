#!/usr/bin/env python3
"""Writes the tokenizer test corpus: one JSON string per line (JSON Lines), deterministic.

usage: gen_corpus.py [SEED] > corpus.jsonl   (the committed corpus uses the default seed; other
seeds give fresh corpora of the same shape for extra differential runs)
       gen_corpus.py --codepoints SEED N_LINES   (random code points of all planes; see diff_run.sh)
Categories (a fixed number of lines each) cover what issue 3 asks for: English and Chinese prose,
mixed zh/en, code, numbers and dates, punctuation of both languages, emoji and ZWJ sequences,
combining marks that NFC changes, whitespace runs, contractions in odd case, special-token
strings, other scripts, and random stress strings (control characters, long runs that exercise
the long-piece BPE path). Uses its own xorshift generator so the output never depends on the
Python version.
"""
import json
import sys


class Rng:
    def __init__(self, seed):
        self.s = seed or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 7
        s ^= (s << 17) & 0xFFFFFFFFFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, p100):
        return self.below(100) < p100


EN = ("the of and to in is was he for it with as his on be at by had are but from or have an "
      "they which one you were all we her she there would their will when who him been has more "
      "if no out so said what up its about than into them can only other time new some could "
      "these two may first then do any like my now over such our man me even most made after "
      "also did many before must through back years where much your way well down should "
      "because each just those people how too little state good very make world still own see "
      "men work long get here between both life being under never day same another know while "
      "last might us great old year off come since against go came right used take three "
      "speech audio model listen speak duplex token frame codec streaming latency interrupt "
      "conversation assistant weather tomorrow Beijing Shanghai London Monday Tuesday coffee "
      "don't can't won't isn't it's I'm you're we've they'll she'd o'clock rock'n'roll "
      "naïve café résumé coöperate façade jalapeño Zürich São Paulo Ærø fiancée").split()
ZH = ("我们 你好 今天 明天 天气 非常 好 的 是 在 有 一个 这个 那个 没有 可以 因为 所以 但是 如果 "
      "已经 还是 自己 什么 怎么 为什么 时候 现在 以后 中国 北京 上海 广州 深圳 世界 人民 经济 "
      "发展 社会 文化 历史 科学 技术 语音 模型 训练 数据 对话 全双工 实时 打断 回答 问题 "
      "学习 工作 生活 朋友 家庭 孩子 老师 学生 医院 银行 公司 市场 价格 喜欢 觉得 知道 "
      "希望 需要 开始 结束 继续 研究 方法 结果 重要 简单 复杂 快乐 安静 美丽 龍 體 臺灣 "
      "說話 聽 見 請 謝謝 對不起 沒關係 電腦 網絡 麵條 餃子 燒賣 鬱 龘 𠀋 𪚥 丼 峠").split()
ZH_PUNCT = "，。！？、；：“”‘’《》（）【】—…·「」『』〈〉～"
EN_PUNCT = ".,!?;:'\"()[]{}-_/\\@#$%^&*+=<>|`~"
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👍🏿", "❤️", "❤", "🔥", "✨", "🎉", "🇨🇳", "🇺🇸", "🇬🇧",
         "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🏴‍☠️", "🧑🏾‍🚀", "👁️‍🗨️", "1️⃣", "#️⃣", "©️", "™",
         "🫠", "🪿", "☕", "⚡", "🀄", "🈶", "㊗️", "🐉", "🧧", "👩‍❤️‍💋‍👨", "🤷‍♀️", "🙆🏻‍♂️"]
SCRIPTS = ["Привет, как дела? Всё хорошо.", "ПРИВЕТ МИР", "Γειά σου Κόσμε, ΣΊΣΥΦΟΣ σοφός",
           "مرحبا بالعالم، كيف حالك؟", "السَّلَامُ عَلَيْكُمْ", "שלום עולם", "नमस्ते दुनिया, क़िला",
           "สวัสดีชาวโลก", "こんにちは世界、カタカナとひらがな", "ｶﾀｶﾅ ﾊﾝｶｸ", "안녕하세요 세계",
           "Xin chào thế giới, Tiếng Việt", "Ελληνικά ΑΒΓ", "Ոչ մի", "ქართული", "አማርኛ",
           "ᏣᎳᎩ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙", "ǅemal ǈubljana ǋovi", "İstanbul ıi", "straße STRASSE ẞ",
           "ﬁnance ﬂow ﬀ", "Ⅻ ⅻ ② ⑳ ½ ¾ ² ³ ⁴ ₅", "٠١٢٣٤٥٦٧٨٩ ۱۲۳", "१२३ ๑๒๓", "１２３ＡＢＣ"]
NFC_CASES = ["e\u0301", "E\u0301", "a\u0308", "o\u0302\u0301", "o\u0301\u0302", "A\u030a",
             "\u212b", "\u2126", "\u212a", "n\u0303", "c\u0327", "u\u031b\u0323", "u\u0323\u031b",
             "\u1100\u1161", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
             "\uf900", "\uf92c", "\U0002f800", "\u0958", "\u0915\u093c", "\u00c5\u0301", "e\u0301\u0301",
             "\u0410\u0306", "\u0415\u0308", "\u03b1\u0301", "\u03c9\u0342\u0345", "i\u0307",
             "\u05e9\u05bc\u05c1", "\u0627\u0653", "\u304b\u3099", "\u30cf\u309a", "\u0061\u0328\u0301",
             "\u1e9b\u0323", "x\u0300\u0316", "\u0301", "\u0345", "\u1ebf", "\u01d7", "\u2000", "\u2001"]
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", " \n",
          "\n ", " \t ", "\u00a0", "\u3000", "\u2009", "\u200b", "\ufeff", "\u000b", "\u000c",
          "\u0085", "\u2028", "\u2029", "\u1680", "\u202f", "\u205f", "\u180e", "\u001c", "\u001f",
          " \r\n \t\n", "    ", "        ", "\t \t", "\n\t\t"]
CONTRACT = ["DON'T", "Don'T", "don'T", "It'S", "IT'S", "it's", "we'Re", "WE'RE", "they'VE", "THEY'Ve",
            "I'M", "i'm", "she'LL", "SHE'lL", "he'D", "HE'd", "'s", "'S", "'t", "'re", "'ll'll",
            "''s", "' s", "’s", "It’S", "it'ſ", "o'clock", "rock'n'roll", "'9", "'Ŝ", "l'été",
            "'\u017fs", "Y'ALL", "ma'am", "'\n's", "x'", "'", "''", "'''"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|box_end|>",
           "<|vision_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
           "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>",
           "</think>", "<|im_start", "im_end|>", "<|endoftext", "<think", "<<|im_end|>>",
           "<|IM_END|>", "<wait>", "<asr>", "<answer>", "<|im_start|><|im_start|>", "</think>>"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "int main(void)\n{\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "for (let i = 0; i < n; i++) { sum += a[i]; }",
    "{\"name\": \"flm\", \"version\": \"0.1.0\", \"ids\": [151665, 2048, 2049]}",
    "<div class=\"x\">Hello &amp; goodbye</div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "    if x == None:\n        raise ValueError('bad')\n\n",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
    "git commit -m \"fix: handle \\r\\n\" && ninja -C build",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "a->b->c; p++; --q; x <<= 3; y >>= 1; z ^= ~w;",
    "    \t// tab and spaces\n\t    mixed();\n",
    "$ echo 'Hello world' | flm tokenize --ids\n9707 1879\n",
    "https://example.com/path?q=1&r=%20x#frag",
    "user@example.org, 192.168.0.1:8080, ::1, 0x7fffffff, 1e-9, 3.0f",
    "/* comment */ /** doc\n * line\n */",
    "if (a&&b||!c) {}\nelse{}\n\n\n",
    "print(f\"{x:>10.3f}\")",
    "    ",
]


def en_sentence(r):
    n = 3 + r.below(15)
    words = [r.pick(EN) for _ in range(n)]
    if r.chance(30):
        words[0] = words[0].capitalize()
    if r.chance(10):
        words = [w.upper() for w in words]
    s = ""
    for i, w in enumerate(words):
        s += w
        if i + 1 < n:
            s += r.pick([" ", " ", " ", " ", ", ", "; ", " - ", " (", ") "])
    return s + r.pick([".", "!", "?", "...", ".\"", ""])


def zh_sentence(r):
    n = 2 + r.below(14)
    s = ""
    for i in range(n):
        s += r.pick(ZH)
        if r.chance(20) and i + 1 < n:
            s += r.pick(ZH_PUNCT[:6])
    return s + r.pick(["。", "！", "？", "……", "", "。”"])


def mixed(r):
    parts = []
    for _ in range(2 + r.below(6)):
        k = r.below(4)
        if k == 0:
            parts.append(zh_sentence(r))
        elif k == 1:
            parts.append(r.pick(EN))
        elif k == 2:
            parts.append(str(r.below(100000)))
        else:
            parts.append(r.pick(["AI", "GPU", "iPhone 15", "Qwen2.5", "FLM-Audio", "Python", "ASR", "TTS"]))
    sep = r.pick(["", " ", "  "])
    return sep.join(parts)


def numbers(r):
    k = r.below(8)
    if k == 0:
        return "%04d-%02d-%02d" % (1900 + r.below(200), 1 + r.below(12), 1 + r.below(28))
    if k == 1:
        return "%02d:%02d:%02d" % (r.below(24), r.below(60), r.below(60))
    if k == 2:
        return "%d.%0*d" % (r.below(1000), 1 + r.below(8), r.below(10 ** 8))
    if k == 3:
        return "{:,}".format(r.below(10 ** 12))
    if k == 4:
        return "$%d.%02d, ¥%d, €%d, %d%%" % (r.below(1000), r.below(100), r.below(99999), r.below(999), r.below(101))
    if k == 5:
        return "%d年%d月%d日 下午%d点%d分" % (1990 + r.below(40), 1 + r.below(12), 1 + r.below(28), r.below(12), r.below(60))
    if k == 6:
        return str(r.next())
    return "tel: +%d (%03d) %03d-%04d" % (r.below(99), r.below(1000), r.below(1000), r.below(10000))


def punct(r):
    s = ""
    for _ in range(1 + r.below(8)):
        k = r.below(4)
        if k == 0:
            s += r.pick(ZH_PUNCT) * (1 + r.below(3))
        elif k == 1:
            s += r.pick(EN_PUNCT) * (1 + r.below(4))
        elif k == 2:
            s += r.pick(EN) if r.chance(50) else r.pick(ZH)
        else:
            s += r.pick([" ", "", "\n", " "])
    return s


def emoji(r):
    s = ""
    for _ in range(1 + r.below(6)):
        s += r.pick(EMOJI)
        if r.chance(40):
            s += r.pick([" ", "", r.pick(EN), r.pick(ZH), "!", "\u200d", "\ufe0f"])
    return s


def nfc_case(r):
    s = ""
    for _ in range(1 + r.below(5)):
        s += r.pick(NFC_CASES)
        if r.chance(50):
            s += r.pick([" ", "", r.pick(EN), r.pick(ZH), "'s", "1"])
    return s


def spaces(r):
    s = ""
    for _ in range(1 + r.below(6)):
        s += r.pick(SPACES)
        if r.chance(70):
            s += r.pick([r.pick(EN), r.pick(ZH), "1", "!", "(", "'s", r.pick(EMOJI)])
    return s + (r.pick(SPACES) if r.chance(50) else "")


def contractions(r):
    s = ""
    for _ in range(1 + r.below(5)):
        s += r.pick(CONTRACT)
        s += r.pick([" ", "", " ", "\n", ", "])
    return s


def special(r):
    s = ""
    for _ in range(1 + r.below(5)):
        k = r.below(3)
        s += r.pick(SPECIAL) if k else r.pick([r.pick(EN), r.pick(ZH), " ", "\n", "abc", "x"])
    return s


def scripts(r):
    s = r.pick(SCRIPTS)
    if r.chance(30):
        s = s.upper()
    if r.chance(30):
        s += " " + r.pick(SCRIPTS)
    return s


POOL = ([chr(c) for c in range(0x20, 0x7f)] * 3 + [chr(c) for c in range(0x00, 0x20)] +
        ["\x7f", "\u0080", "\u009f", "\u00ad", "\u034f", "\u200c", "\u200d", "\u2060", "\ue000",
         "\U000f0000", "\U0010fffd", "\U0001f600", "\u0600", "\u06dd", "\U000e0001", "\ufffd",
         "\ufffe", "\uffff", "\u0378"] + list(ZH_PUNCT) + list("αβγДЖ中文字ｱ가힣ß")
        + [s for s in NFC_CASES] + SPACES)


def stress(r):
    k = r.below(10)
    if k == 0:  # long single-class runs: pieces far above the short-piece limit
        return r.pick(["a", "ab", "中", "1", " ", "=", "-", "\t", "\n", "😀", "ä", "xyz"]) * (50 + r.below(400))
    if k == 1:
        return "".join(r.pick(ZH) for _ in range(40 + r.below(80)))
    if k == 2:
        return "".join(r.pick(EN) for _ in range(20 + r.below(60)))
    return "".join(r.pick(POOL) for _ in range(1 + r.below(40)))


FIXED = ["", " ", "\n", "Hello world", "Hello  world", "Hello world ", " Hello world", "\t\tindented",
         "line1\nline2\r\nline3\rline4", "a\n\n\nb", "trailing spaces   ", "trailing newline\n",
         "  \n  ", "x \n", "DON'T STOP", "It'S fine", "<|im_start|>system\nYou are helpful.<|im_end|>\n",
         "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", "<think>\n\n</think>\n\n",
         "12345678901234567890", "3.14159265358979", "2024年10月1日", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",
         "naïve vs nai\u0308ve", "Å vs \u212b vs A\u030a", "👨‍👩‍👧‍👦 family", "中文English混合123"]

CATEGORIES = [("en", en_sentence, 3000), ("zh", zh_sentence, 3000), ("mixed", mixed, 2500),
              ("code", lambda r: r.pick(CODE) if r.chance(40) else "".join(r.pick(CODE) for _ in range(2 + r.below(3))), 1200),
              ("numbers", numbers, 2000), ("punct", punct, 1500), ("emoji", emoji, 1500),
              ("nfc", nfc_case, 1500), ("space", spaces, 2000), ("contract", contractions, 1200),
              ("special", special, 1200), ("scripts", scripts, 800), ("stress", stress, 1600)]


def codepoints(r, n_lines):
    """Random code points over all planes (assigned or not): a differential probe, not committed."""
    for _ in range(n_lines):
        s = []
        for _ in range(1 + r.below(30)):
            k = r.below(10)
            if k < 3:
                c = 0x20 + r.below(0x5F)
            elif k < 4:
                c = r.pick([0x20, 0x20, 0x0A, 0x0D, 0x09, 0x27])
            elif k < 8:
                c = 0x80 + r.below(0xFF80)
            else:
                c = 0x10000 + r.below(0x100000)
            s.append(chr(0x41 if 0xD800 <= c <= 0xDFFF else c))
        sys.stdout.write(json.dumps("".join(s), ensure_ascii=False) + "\n")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--codepoints":
        codepoints(Rng(int(sys.argv[2], 0)), int(sys.argv[3]))
        return
    r = Rng(int(sys.argv[1], 0) if len(sys.argv) > 1 else 0x5EED1234ABCD)
    out = sys.stdout
    for s in FIXED:
        out.write(json.dumps(s, ensure_ascii=False) + "\n")
    for _name, fn, n in CATEGORIES:
        for _ in range(n):
            out.write(json.dumps(fn(r), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
