"""Variable-length items, length-bucketed batches (coverage per rank, padding, resume,
determinism), the padded collate and the torch adapters' set_epoch."""
import os
import re
from collections import Counter

import numpy as np
import pytest

import flmstream
from flmstream.batching import BucketSampler, bucket_batches, collate_padded, padding_fraction
from flmstream.dataset import AUD_PAD, TEXT_WAIT

MAX_FRAMES = 12000


def sampler(path, world=1, rank=0, seed=1, epoch=0, max_frames=MAX_FRAMES, **kw):
    ds = flmstream.Dataset(path, seed=seed, epoch=epoch, rank=rank, world=world, frames=None,
                           **kw)
    return BucketSampler(ds, max_frames=max_frames)


def test_frames_none_gives_each_item_at_its_own_length(mixed):
    ds = flmstream.Dataset(mixed, frames=None)
    lengths = ds.item_lengths()
    assert lengths.min() >= 600 and lengths.max() <= 2400 and lengths.max() - lengths.min() > 1200
    seen = set()
    for k in range(0, len(ds), 7):
        it = ds[k]
        assert it["tokens"].shape == (17, it["n_frames"]) == it["loss_class"].shape
        assert it["mask"].shape == (it["n_frames"],) and it["mask"].all()
        assert not it["truncated"]
        seen.add(it["n_frames"])
    assert len(seen) > 20  # really variable
    d = flmstream.Dataset(mixed, frames=None, delays="flm")
    it, plain = d.read_sample(5), ds.read_sample(5)
    assert it["tokens"].shape == (17, plain["n_frames"] + 1)  # the largest delay is 1
    assert (it["tokens"][0, :-1] == plain["tokens"][0]).all()
    assert (it["tokens"][2, 1:] == plain["tokens"][2]).all()  # channel 2: delay 1
    assert d.item_lengths()[5] == plain["n_frames"] + 1


def test_a_longer_sample_is_refused_unless_truncate(mixed):
    lengths = flmstream.Dataset(mixed, frames=None).item_lengths()
    n_long = int((lengths > 1000).sum())
    with pytest.raises(flmstream.FlmError, match=rf"{n_long} of 300 samples are longer than "
                       rf"frames=1000 \(the longest: sample {int(lengths.argmax())}, "
                       rf"{int(lengths.max())} frames\).*frames=None.*truncate=True"):
        flmstream.Dataset(mixed, frames=1000)
    ds = flmstream.Dataset(mixed, frames=1000, truncate=True, shuffle=False)
    full = flmstream.Dataset(mixed, frames=None, shuffle=False)
    for k in range(0, 300, 13):
        it, whole = ds[k], full[k]
        assert it["tokens"].shape == (17, 1000)
        assert it["truncated"] == (whole["n_frames"] > 1000)
        m = min(1000, whole["n_frames"])
        assert (it["tokens"][:, :m] == whole["tokens"][:, :m]).all() and it["mask"].sum() == m
    flmstream.Dataset(mixed, frames=2400)  # every sample fits: no error


def test_a_longer_sample_is_refused_unless_truncate_delays(mixed):
    longest = int(flmstream.Dataset(mixed, frames=None).item_lengths().max())
    flmstream.Dataset(mixed, frames=longest + 1, delays="flm")
    with pytest.raises(flmstream.FlmError, match=rf"{longest + 1} frames with the delays"):
        flmstream.Dataset(mixed, frames=longest, delays="flm")


@pytest.mark.parametrize("world", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_bucketed_batches_cover_the_epoch_once_across_ranks(mixed, world, seed):
    weights = {"synthetic-en": 2.5} if seed == 7 else None  # with duplicated samples too
    ranks = [sampler(mixed, world, r, seed=seed, weights=weights) for r in range(world)]
    epoch = ranks[0].ds.global_sample_numbers()
    lengths = ranks[0]._lengths
    per_rank = [list(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) > 0  # same count per rank
    assert all(len(s) == 0 for s in ranks)  # all taken
    got = Counter(n for batches in per_rank for b in batches for n in b)
    assert got == Counter(epoch.tolist())  # every sample of the epoch exactly once
    for batches in per_rank:
        for b in batches:
            padded = len(b) * max(lengths[n] for n in b)
            assert padded <= MAX_FRAMES or len(b) == 1
    # rank r's batches are batches r, r+world, ... of the global list every rank builds
    glob = ranks[0].global_batches
    for r in range(world):
        assert per_rank[r] == glob[r::world] and ranks[r].global_batches == glob


def test_bucketed_batches_pad_at_most_a_quarter(mixed):
    ds = flmstream.Dataset(mixed, seed=3, frames=None, delays="flm")
    s = BucketSampler(ds, max_frames=MAX_FRAMES)
    pad_real = []
    total = padded = 0
    for numbers in s:
        batch = collate_padded([ds.read_sample(n) for n in numbers])
        total += batch["mask"].size
        padded += (~batch["mask"]).sum()
        pad_real.append(batch["mask"].shape[1] == max(batch["n_frames"]) + 1)
    assert all(pad_real)  # padded to the batch's longest item, no further
    frac = padded / total
    assert frac <= 0.25, frac
    assert abs(frac - padding_fraction(s.global_batches, s._lengths)) < 1e-9
    # for scale: the same epoch padded to its longest item would waste far more
    lengths = ds.item_lengths()
    assert 1 - lengths.mean() / lengths.max() > 0.3


@pytest.mark.parametrize("world,rank", [(1, 0), (3, 2)])
def test_bucketed_resume_mid_epoch_is_exact(mixed, world, rank):
    full = list(sampler(mixed, world, rank, seed=4))
    for stop in (0, 1, len(full) // 2, len(full) - 1, len(full)):
        s = sampler(mixed, world, rank, seed=4)
        it = iter(s)
        head = [next(it) for _ in range(stop)]
        state = s.state_dict()
        assert state["batches"] == stop * world and state["epoch"] == 0
        s2 = sampler(mixed, world, rank, seed=4)
        s2.load_state_dict(state)
        assert len(s2) == len(full) - stop
        assert head + list(s2) == full


@pytest.mark.parametrize("worlds,stops", [((3, 2), (4,)), ((2, 5), (3,)), ((4, 1, 3), (2, 5))])
def test_bucketed_resume_with_another_world_size(mixed, worlds, stops):
    """A job of worlds[0] ranks stops after stops[0] batches per rank, the next job (worlds[1]
    ranks) goes on from its state, and so on; the last job runs to the end. Every sample of the
    epoch is taken exactly once, and in each job every rank takes the same number of batches."""
    taken = []
    state = None
    for j, world in enumerate(worlds):
        ranks = [sampler(mixed, world, r, seed=2) for r in range(world)]
        if state is not None:
            for s in ranks:
                s.load_state_dict(state)
        counts = {len(s) for s in ranks}
        assert len(counts) == 1
        stop = stops[j] if j < len(stops) else counts.pop()
        for s in ranks:
            it = iter(s)
            taken.extend(n for _ in range(stop) for n in next(it))
        states = [s.state_dict() for s in ranks]
        assert all(st == states[0] for st in states)  # lockstep: the same state on every rank
        state = states[0]
    assert all(len(s) == 0 for s in ranks)
    assert Counter(taken) == Counter(ranks[0].ds.global_sample_numbers().tolist())
    assert len(state["resumed"]) == len(worlds) - 1
    # a state taken after a world change resumes exactly in the same world size too
    again = sampler(mixed, worlds[-1], 0, seed=2)
    again.load_state_dict(dict(state, batches=0))
    full = list(again)
    mid = sampler(mixed, worlds[-1], 0, seed=2)
    mid.load_state_dict(dict(state, batches=worlds[-1]))
    assert [full[0]] + list(mid) == full


def test_bucketed_state_errors(mixed):
    s = sampler(mixed, 2, 0, seed=4)
    state = s.state_dict()
    with pytest.raises(ValueError, match="max_frames"):
        sampler(mixed, 2, 0, seed=4, max_frames=6000).load_state_dict(state)
    with pytest.raises(ValueError, match="seed"):
        sampler(mixed, 2, 0, seed=5).load_state_dict(state)
    with pytest.raises(flmstream.FlmError, match="beyond the end"):
        s.load_state_dict(dict(state, batches=10**6))
    with pytest.raises(flmstream.FlmError, match="not a multiple"):
        s.load_state_dict(dict(state, batches=3))
    with pytest.raises(flmstream.FlmError, match="frames=None"):
        BucketSampler(flmstream.Dataset(mixed, frames=4096), max_frames=MAX_FRAMES)
    with pytest.raises(flmstream.FlmError, match="max_frames"):
        BucketSampler(flmstream.Dataset(mixed, frames=None), max_frames=0)


def test_bucketed_batches_are_deterministic_per_seed_and_epoch(mixed):
    a = sampler(mixed, 2, 1, seed=9, epoch=0).batches()
    assert a == sampler(mixed, 2, 1, seed=9, epoch=0).batches()
    b = sampler(mixed, 2, 1, seed=9, epoch=1).batches()
    c = sampler(mixed, 2, 1, seed=10, epoch=0).batches()
    assert a != b and a != c
    # not only reordered: the batches' compositions change too (the epoch order feeds buckets)
    assert len({tuple(sorted(x)) for x in a} & {tuple(sorted(x)) for x in b}) < len(a) // 4
    s = sampler(mixed, 2, 1, seed=9, epoch=0)
    next(iter(s))
    s.set_epoch(1)
    assert s.ds.epoch == 1 and list(s) == b
    # the pure function is the same across calls (a fixed generator, no global state)
    order, lengths = s.ds.global_sample_numbers(), s._lengths
    assert bucket_batches(order, lengths, MAX_FRAMES, seed=9, epoch=1, world=2)[1::2] == b


def test_bucket_batches_small_cases():
    lengths = np.array([10, 20, 30, 40, 50])
    # every sample alone over budget: batches of one; world 2 with 5 singletons drops one
    assert bucket_batches([0, 1, 2, 3, 4], lengths, 5, shuffle=False) == [[0], [1], [2], [3], [4]]
    assert len(bucket_batches([0, 1, 2, 3, 4], lengths, 5, world=2, shuffle=False)) == 4
    # splitting keeps every sample: 1 batch of 5 for world 2 -> 3 + 2
    b = bucket_batches([0, 1, 2, 3, 4], lengths, 1000, num_buckets=1, world=2, shuffle=False)
    assert b == [[0, 1, 2], [3, 4]]
    assert bucket_batches([], lengths, 100) == []
    # max_items caps the batch
    assert all(len(x) <= 2 for x in bucket_batches([0, 1, 2, 3, 4], lengths, 1000, num_buckets=1,
                                                   max_items=2))


def test_collate_padded_pads_to_the_longest_with_masks(mixed):
    ds = flmstream.Dataset(mixed, frames=None)
    items = [ds.read_sample(n) for n in (0, 1, 2)]
    b = collate_padded(items)
    t = max(it["n_frames"] for it in items)
    assert b["tokens"].shape == (3, 17, t) and b["mask"].shape == (3, t)
    for i, it in enumerate(items):
        n = it["n_frames"]
        assert (b["tokens"][i, :, :n] == it["tokens"]).all() and b["mask"][i, :n].all()
        assert not b["mask"][i, n:].any() and (b["loss_weight"][i, :, n:] == 0).all()
        assert (b["tokens"][i, 0, n:] == TEXT_WAIT).all() and (b["tokens"][i, 1:, n:] == AUD_PAD).all()
    assert b["n_frames"].tolist() == [it["n_frames"] for it in items]
    assert b["id"] == [it["id"] for it in items]


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("workers", [0, 2])
def test_bucket_loader_resumes_exactly_and_sets_epochs(mixed, workers):
    from flmstream.torch import BucketLoader

    def loader():
        return BucketLoader(sampler(mixed, 2, 0, seed=6), num_workers=workers)

    full = [b["id"] for b in loader()]
    assert len(full) == len(loader())
    l1 = loader()
    head = []
    for b in l1:
        assert b["tokens"].dtype == torch.int64 and b["mask"].dtype == torch.bool
        assert b["tokens"].shape[-1] == int(b["n_frames"].max())
        head.append(b["id"])
        if len(head) == 3:
            break
    state = l1.state_dict()
    assert state["batches"] == 6  # 3 batches on each of 2 ranks
    l2 = loader()
    l2.load_state_dict(state)
    assert head + [b["id"] for b in l2] == full
    l2.set_epoch(1)
    e1 = [b["id"] for b in l2]
    assert e1 != full and sorted(sum(e1, [])) != [] and list(l2) == []


def test_torch_iterable_set_epoch(dataset):
    from flmstream.torch import TorchIterable

    it = TorchIterable(flmstream.Dataset(dataset, seed=2, frames=64))
    first = [x["id"] for x in it]
    it.set_epoch(1)
    second = [x["id"] for x in it]
    assert len(first) == len(second) and first != second and sorted(first) == sorted(second)


def test_the_wheel_builds_the_reader_sources_the_build_checks():
    root = os.path.join(os.path.dirname(__file__), "..", "..")

    def files_in(path, var):
        text = open(os.path.join(root, path), encoding="utf-8").read()
        block = re.search(var + r" = files\((.*?)\)\n", text, re.S).group(1)
        return sorted(os.path.basename(f) for f in re.findall(r"'([\w.]+\.c)'", block))

    want = files_in("libstream/meson.build", "libstream_reader_src")
    assert want == files_in("python/meson.build", "reader_src")
    assert "audio.c" not in want and not any(f.startswith("tokenizer") for f in want)
