"""The training-side reader: order, ranks, resume, mixture weights, items, errors, torch."""
import json
import pathlib
import math
import random
from collections import Counter

import numpy as np
import pytest

import flmstream
from conftest import corrupt_record, flm


def test_order_is_reproducible_and_changes_with_epoch(dataset):
    a = flmstream.Dataset(dataset, seed=5, epoch=0).sample_numbers()
    b = flmstream.Dataset(dataset, seed=5, epoch=0).sample_numbers()
    c = flmstream.Dataset(dataset, seed=5, epoch=1).sample_numbers()
    d = flmstream.Dataset(dataset, seed=6, epoch=0).sample_numbers()
    assert len(a) == 1200 and sorted(a) == list(range(1200))
    assert (a == b).all()
    assert (a != c).mean() > 0.9 and (a != d).mean() > 0.9
    assert (a != np.arange(1200)).mean() > 0.9  # actually shuffled


@pytest.mark.parametrize("world", range(1, 9))
def test_ranks_partition_the_epoch(dataset, world):
    full = flmstream.Dataset(dataset, seed=3, epoch=2)
    order = full.sample_numbers()
    n = len(order) - len(order) % world
    seen = []
    for rank in range(world):
        ds = flmstream.Dataset(dataset, seed=3, epoch=2, rank=rank, world=world)
        assert len(ds) == n // world
        pos = ds.positions()
        assert (order[pos] == ds.sample_numbers()).all()
        seen.extend(pos.tolist())
    assert sorted(seen) == list(range(n))  # union is the epoch (less the < world tail), no overlap


def test_resume_yields_exactly_the_rest(dataset):
    rng = random.Random(1)
    order = flmstream.Dataset(dataset, seed=11, epoch=4).sample_numbers()
    for trial in range(50):
        w1, w2 = rng.randint(1, 8), rng.randint(1, 8)
        ranks = [flmstream.Dataset(dataset, seed=11, epoch=4, rank=r, world=w1) for r in range(w1)]
        k = rng.randint(0, len(ranks[0]))
        consumed = []
        for ds in ranks:  # lockstep: every rank takes k samples
            it = iter(ds)
            consumed += [next(it)["position"] for _ in range(k)]
        state = ranks[0].state_dict()
        assert state["consumed"] == k * w1
        state = json.loads(json.dumps(state))  # survives a checkpoint file
        rest = []
        for r in range(w2):
            ds = flmstream.Dataset(dataset, seed=11, epoch=0, rank=r, world=w2)
            ds.load_state_dict(state)
            rest += ds.positions().tolist()
        assert sorted(consumed) == list(range(k * w1)), trial
        tail = (len(order) - k * w1) % w2
        assert sorted(rest) == list(range(k * w1, len(order) - tail)), trial  # no replay, no gap


def test_mixture_weights(dataset):
    base = flmstream.Dataset(dataset, seed=1)
    corpus = Counter(base[k]["corpus"] for k in range(len(base)))
    ds = flmstream.Dataset(dataset, seed=1, weights={"synthetic-en": 5, "synthetic-zh": 0.5})
    got = Counter(flmstream.Dataset.read_sample(ds, n)["corpus"] for n in ds.sample_numbers())
    assert got["synthetic-en"] == 5 * corpus["synthetic-en"]
    n, p = corpus["synthetic-zh"], 0.5
    assert abs(got["synthetic-zh"] - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert len(ds) == got["synthetic-en"] + got["synthetic-zh"]
    with pytest.raises(flmstream.FlmError, match="weight of corpus"):
        flmstream.Dataset(dataset, weights={"synthetic-en": -1})


def test_recipe_weights_and_loss_weights(dataset, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({
        "kind": "recipe", "name": "t", "stage": "post-training-2",
        "corpus_weights": {"*": 2.0, "synthetic-zh": 0.0},
        "loss_weights": {"semantic": 3.0, "acoustic": 0.25, "monologue": 1.0, "wait": 0.0}}))
    flm("recipe", "check", str(recipe))  # the C validator accepts it
    base = flmstream.Dataset(dataset, seed=1)
    n_en = sum(base[k]["corpus"] == "synthetic-en" for k in range(len(base)))
    ds = flmstream.Dataset(dataset, seed=1, recipe=str(recipe))
    assert len(ds) == 2 * n_en  # "*" = 2 for synthetic-en, synthetic-zh dropped
    item = ds[0]
    want = np.array([0, 3.0, 0.25, 1.0, 0.0], np.float32)[item["loss_class"]]
    assert (item["loss_weight"] == want).all()


def test_items_equal_flm_inspect(dataset):
    ds = flmstream.Dataset(dataset, seed=2, frames=100)
    for k in (0, 1, 77, len(ds) - 1):
        item = ds[k]
        loc = flm("index", "locate", dataset, item["id"]).strip()
        ref = json.loads(flm("inspect", loc, "--json"))
        t = ref["n_frames"]
        assert item["n_frames"] == t
        assert (item["tokens"][:, :t] == np.array(ref["tokens"], np.int32)).all()
        assert (item["loss_class"][:, :t] == np.array(ref["loss_class"], np.uint8)).all()
        for key in ("id", "style", "stage", "language", "corpus", "speakers", "metadata", "events"):
            assert item[key] == ref[key], key
        assert item["duration_s"] == pytest.approx(ref["duration_s"], rel=0, abs=1e-12)


def test_padding_mask_and_loss_weights(dataset):
    lw = {"semantic": 100.0, "acoustic": 1.0, "monologue": 1.0, "wait": 0.5}  # Moshi's defaults
    item = flmstream.Dataset(dataset, frames=80, loss_weights=lw)[3]
    t = item["n_frames"]
    assert item["tokens"].shape == (17, 80) and item["tokens"].dtype == np.int32
    assert item["mask"][:t].all() and not item["mask"][t:].any()
    assert (item["tokens"][0, t:] == 151665).all() and (item["tokens"][1:, t:] == 2048).all()
    want = np.array([0, 100, 1, 1, 0.5], np.float32)[item["loss_class"]]
    assert (item["loss_weight"] == want).all()
    assert (item["loss_weight"][:, t:] == 0).all()


def test_delay_view(dataset):
    plain = flmstream.Dataset(dataset, frames=100)[5]
    delayed = flmstream.Dataset(dataset, frames=100, delays="flm")[5]
    t = plain["n_frames"]
    for ch, d in enumerate(flmstream.dataset.FLM_DELAYS):
        assert (delayed["tokens"][ch, d:d + t] == plain["tokens"][ch, :t]).all()
        if d:
            assert delayed["tokens"][ch, 0] == (151665 if ch == 0 else 2048)
    assert delayed["mask"][: t + 1].all()


def test_corrupted_record_is_named_or_skipped(damaged, caplog):
    ds = flmstream.Dataset(damaged, shuffle=False)
    sample_id = ds[10]["id"]
    ds.close()
    shard, rec = corrupt_record(damaged, sample_id)
    ds = flmstream.Dataset(damaged, shuffle=False)
    with pytest.raises(flmstream.FlmError, match=f"{shard}: record {rec}: checksum mismatch"):
        ds[10]
    skip = flmstream.Dataset(damaged, shuffle=False, on_error="skip")
    ids = [it["id"] for it in skip]
    assert len(ids) == 1199
    assert "checksum mismatch" in caplog.text


def test_missing_index_error(tmp_path):
    with pytest.raises(flmstream.FlmError, match="not found"):
        flmstream.Dataset(str(tmp_path / "nothing"))


def test_torch_loader_order_and_resume(dataset):
    torch = pytest.importorskip("torch")
    from flmstream.torch import Loader

    ds = flmstream.Dataset(dataset, seed=4, frames=64, world=2, rank=1)
    want = [ds[k]["id"] for k in range(len(ds))]
    loader = Loader(ds, batch_size=4, num_workers=2)
    got, state = [], None
    for step, batch in enumerate(loader):
        assert batch["tokens"].shape == (len(batch["id"]), 17, 64)
        assert batch["tokens"].dtype == torch.int64
        got += batch["id"]
        if step == 20:
            state = loader.state_dict()
    assert got == want  # exact sequence order through 2 workers
    ds2 = flmstream.Dataset(dataset, seed=4, frames=64, world=2, rank=1)
    loader2 = Loader(ds2, batch_size=4, num_workers=2)
    loader2.load_state_dict(state)
    rest = [b for batch in loader2 for b in batch["id"]]
    assert rest == want[84:]


def test_profile_constants_are_the_shipped_profiles():
    """The constants come from libstream's profiles (one definition): they equal the files."""
    root = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "profiles"
    model = json.loads((root / "model-flm-audio.json").read_text())
    vocab = json.loads((root / "vocab-flm-audio.json").read_text())
    codec = json.loads((root / "codec-mimi.json").read_text())
    assert flmstream.dataset.FLM_DELAYS == tuple(model["delays"])
    assert flmstream.DEFAULT_LOSS_WEIGHTS == model["loss_weights"]
    assert flmstream.dataset.TEXT_WAIT == vocab["text_wait"] == 151665
    assert flmstream.dataset.AUD_PAD == codec["aud_pad"] == 2048
