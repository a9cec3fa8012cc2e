"""A dataset is never silently wrong (issue 18, item 7 and case 8): exact resume through torch
DataLoaders whatever the batch size and worker count, and weights / positions checked."""
import json
import math
import re

import pytest

import flmstream
from conftest import corrupt_record

torch = pytest.importorskip("torch")
from flmstream.torch import Loader, TorchIterable, collate  # noqa: E402

NAN, INF = math.nan, math.inf


def rank_ds(dataset, world=6, **kw):
    """Rank 1 of `world`: 200 samples with world=6 (1200 samples), short items."""
    return flmstream.Dataset(dataset, seed=4, frames=16, truncate=True, world=world, rank=1, **kw)


def want_ids(dataset, world=6):
    ds = rank_ds(dataset, world)
    return [ds[k]["id"] for k in range(len(ds))]


def first_batch_error(dl):
    """The FlmError a DataLoader raises at its first batch. The traceback is dropped: torch
    re-raises a worker's error from a frame that holds it, a reference cycle that would keep
    the DataLoader alive until a gc pass, whose worker shutdown then stalls 5 s per worker."""
    it = iter(dl)
    try:
        next(it)
    except flmstream.FlmError as e:
        e.__traceback__ = None
        return str(e)
    return "(no error)"


def saved(state):
    return json.loads(json.dumps(state))  # as a checkpoint file gives it back


# -- exact resume ------------------------------------------------------------------------------

@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size", [1, 4, 8])
def test_loader_resume_is_exact(dataset, batch_size, num_workers):
    """Stop after 1 and 5 batches, then after 2 with another batch size and worker count, each
    time resuming with new objects from the saved state: the epoch comes out whole, in order,
    every sample once; the state counts exactly the samples of the batches the loop received
    (the one it holds included)."""
    want = want_ids(dataset)
    got, state = [], None
    plan = [(batch_size, num_workers, 1), (batch_size, num_workers, 5), (3, 2 - num_workers, 2),
            (batch_size, num_workers, None)]
    for b, nw, stop in plan:
        ds = rank_ds(dataset)
        if state is not None:
            ds.load_state_dict(saved(state))
        loader = Loader(ds, batch_size=b, num_workers=nw)
        for step, batch in enumerate(loader):
            assert len(batch["id"]) == min(b, len(want) - len(got))
            got += batch["id"]
            assert loader.state_dict()["consumed"] == 6 * len(got)
            if step + 1 == stop:
                break
        state = loader.state_dict()
    assert got == want and state["consumed"] == 6 * len(want)
    assert len(Loader(rank_ds(dataset), batch_size=batch_size)) == -(-len(want) // batch_size)


@pytest.mark.parametrize("loader_batch", [1, 4, 8])
@pytest.mark.parametrize("adapter_batch", [1, 4, 8])
def test_torch_iterable_single_process_resume_is_exact(dataset, adapter_batch, loader_batch):
    """TorchIterable in a DataLoader you build, num_workers=0: state_dict() with no arguments
    is exact after any batch, whatever the two batch sizes."""
    want = want_ids(dataset)
    got, state = [], None
    for stop in (2, 3, None):
        ds = rank_ds(dataset)
        if state is not None:
            ds.load_state_dict(saved(state))
        it = TorchIterable(ds, batch_size=adapter_batch)
        dl = torch.utils.data.DataLoader(it, batch_size=loader_batch, num_workers=0,
                                         collate_fn=collate)
        for step, batch in enumerate(dl):
            got += batch["id"]
            assert it.state_dict()["consumed"] == 6 * len(got)
            if step + 1 == stop:
                break
        state = it.state_dict()
    assert got == want and state["consumed"] == 6 * len(want)


@pytest.mark.parametrize("loader_batch", [1, 4, 8])
@pytest.mark.parametrize("adapter_batch", [1, 4, 8])
def test_torch_iterable_with_workers_is_refused(dataset, adapter_batch, loader_batch):
    it = TorchIterable(rank_ds(dataset), batch_size=adapter_batch)
    dl = torch.utils.data.DataLoader(it, batch_size=loader_batch, num_workers=2,
                                     collate_fn=collate)
    assert re.search(r"TorchIterable in a DataLoader with num_workers=2: .* use "
                     r"flmstream\.torch\.Loader", first_batch_error(dl))


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("loader_batch", [1, 4, 8])
@pytest.mark.parametrize("adapter_batch", [1, 4, 8])
def test_loader_over_torch_iterable(dataset, adapter_batch, loader_batch, num_workers):
    """A TorchIterable handed to Loader: same batch size reads exactly, another is refused."""
    want = want_ids(dataset)
    it = TorchIterable(rank_ds(dataset), batch_size=adapter_batch)
    if adapter_batch != loader_batch:
        with pytest.raises(flmstream.FlmError, match=rf"TorchIterable\(batch_size={adapter_batch}"
                           rf"\) but Loader\(batch_size={loader_batch}\)"):
            Loader(it, batch_size=loader_batch, num_workers=num_workers)
        return
    loader = Loader(it, batch_size=loader_batch, num_workers=num_workers)
    got = []
    for step, batch in enumerate(loader):
        got += batch["id"]
        if step == 3:
            break
    state = it.state_dict()
    assert state == loader.state_dict() and state["consumed"] == 6 * len(got)
    it2 = TorchIterable(rank_ds(dataset), batch_size=adapter_batch)
    it2.load_state_dict(saved(state))
    got += [i for batch in Loader(it2, batch_size=loader_batch, num_workers=num_workers)
            for i in batch["id"]]
    assert got == want


def test_case8_adapter_batch_4_loader_batch_8_two_workers(dataset):
    """Case 8: TorchIterable(ds, batch_size=4) in DataLoader(batch_size=8, num_workers=2),
    resumed from state_dict(items_seen=8), gave 4 duplicates and 4 missing samples and no
    warning. Now that set-up is refused, as is the items_seen argument, and Loader does it."""
    want = want_ids(dataset)
    it = TorchIterable(rank_ds(dataset), batch_size=4)
    dl = torch.utils.data.DataLoader(it, batch_size=8, num_workers=2, collate_fn=collate)
    assert "use flmstream.torch.Loader" in first_batch_error(dl)
    with pytest.raises(flmstream.FlmError, match="takes no items_seen"):
        it.state_dict(items_seen=8)
    loader = Loader(rank_ds(dataset), batch_size=8, num_workers=2)
    first = next(iter(loader))["id"]
    ds = rank_ds(dataset)
    ds.load_state_dict(saved(loader.state_dict()))
    rest = [i for batch in Loader(ds, batch_size=8, num_workers=2) for i in batch["id"]]
    assert first + rest == want  # no duplicate, nothing missing


def test_loader_drop_last(dataset):
    """world=7: 171 samples; batches of 8 leave the last 3 out, and the state says so."""
    want = want_ids(dataset, world=7)
    assert len(want) == 171
    loader = Loader(rank_ds(dataset, world=7), batch_size=8, num_workers=2, drop_last=True)
    assert len(loader) == 21
    got = [i for batch in loader for i in batch["id"]]
    assert got == want[:168]
    assert loader.state_dict()["consumed"] == 7 * 168
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_loader_skips_bad_records_and_counts_them(damaged, batch_size, num_workers, caplog):
    def quarter(**kw):  # rank 2 of 4, epoch order = index order: 300 samples
        return flmstream.Dataset(damaged, shuffle=False, frames=16, truncate=True, world=4, rank=2, **kw)

    ds = quarter()
    bad = ds[10]["id"]
    ds.close()
    corrupt_record(damaged, bad)
    loader = Loader(quarter(on_error="skip"), batch_size=batch_size, num_workers=num_workers)
    got = []
    for step, batch in enumerate(loader):
        got += batch["id"]
        if step == 12 // batch_size:  # stop just after the bad record's batch
            break
    state = loader.state_dict()
    assert state["consumed"] == 4 * (len(got) + 1)  # the skipped sample counts as consumed
    ds2 = quarter(on_error="skip")
    ds2.load_state_dict(saved(state))
    got += [i for batch in Loader(ds2, batch_size=batch_size, num_workers=num_workers)
            for i in batch["id"]]
    assert bad not in got and len(got) == len(set(got)) == 299
    if num_workers == 0:  # workers log in their own processes
        assert "checksum mismatch" in caplog.text
    dl = Loader(quarter(), batch_size=batch_size, num_workers=num_workers)
    with pytest.raises(flmstream.FlmError, match="checksum mismatch"):
        for _ in dl:
            pass


def test_loader_epochs_and_moves_during_iteration(dataset):
    ds = rank_ds(dataset)
    loader = Loader(ds, batch_size=50)
    assert sum(len(b["id"]) for b in loader) == 200
    assert list(loader) == []  # the epoch is over until set_epoch
    loader.set_epoch(1)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["consumed"] == 0
    ep1 = flmstream.Dataset(dataset, seed=4, epoch=1, frames=16, truncate=True, world=6, rank=1)
    assert [i for b in loader for i in b["id"]] == [ep1[k]["id"] for k in range(len(ep1))]
    loader.set_epoch(0)
    running = iter(loader)
    next(running)
    loader.load_state_dict({"seed": 4, "epoch": 0, "consumed": 0})
    with pytest.raises(flmstream.FlmError, match="dataset was moved"):
        next(running)


def test_loader_refuses_order_changing_arguments(dataset):
    ds = rank_ds(dataset)
    for kw, msg in [({"shuffle": True}, "shuffle= is not accepted"),
                    ({"sampler": [0, 1]}, "sampler= is not accepted"),
                    ({"persistent_workers": True}, "persistent_workers=True is not accepted"),
                    ({"in_order": False}, "in_order=False is not accepted"),
                    ({"batch_size": 0}, "batch_size is 0"),
                    ({"num_workers": -1}, "num_workers is -1")]:
        with pytest.raises(flmstream.FlmError, match=msg):
            Loader(ds, **kw)


# -- weights -----------------------------------------------------------------------------------

def test_case8_star_weight_nan_is_refused(dataset):
    """Case 8: weights={'*': nan} gave an empty epoch, silently."""
    with pytest.raises(flmstream.FlmError, match=r'weights\["\*"\]: weight of corpus "\*" '
                       r"\(every corpus not listed\) is nan, expected a number in \[0, 1000\]"):
        flmstream.Dataset(dataset, weights={"*": NAN})


@pytest.mark.parametrize("value", [NAN, INF, -INF, -1, -0.5, 1000.5, "2", True, None])
@pytest.mark.parametrize("key", ["*", "synthetic-en"])
def test_bad_corpus_weight_is_refused(dataset, key, value):
    with pytest.raises(flmstream.FlmError, match=rf'weights\["{re.escape(key)}"\]: weight of '
                       rf'corpus "{re.escape(key)}".* is {re.escape(repr(value))}, expected a '
                       r"number in \[0, 1000\]"):
        flmstream.Dataset(dataset, weights={key: value})


def test_corpus_weight_bounds_are_accepted(dataset):
    n1 = len(flmstream.Dataset(dataset, weights={"*": 0, "synthetic-en": 1}))
    n2 = len(flmstream.Dataset(dataset, weights={"*": 0.0, "synthetic-en": 1000}))
    assert 0 < n1 < 1200 and n2 == 1000 * n1


def test_case8_unknown_corpus_is_refused(dataset):
    """Case 8: a typo in a corpus name was ignored, so the mixture was not what was asked."""
    with pytest.raises(flmstream.FlmError, match=r'weights\["synthetic-fr"\]: the dataset has no '
                       r'corpus "synthetic-fr" \(its corpora: synthetic-en, synthetic-zh\)'):
        flmstream.Dataset(dataset, weights={"synthetic-en": 2, "synthetic-fr": 0.5})
    assert flmstream.Dataset(dataset).corpora() == ["synthetic-en", "synthetic-zh"]


def test_case8_loss_weight_nan_is_refused(dataset):
    """Case 8: loss_weights={'semantic': nan} passed."""
    with pytest.raises(flmstream.FlmError, match=r'loss_weights\["semantic"\]: loss weight of '
                       r'class "semantic" is nan, expected a number in \[0, 10000\]'):
        flmstream.Dataset(dataset, loss_weights={"semantic": NAN})


@pytest.mark.parametrize("value", [NAN, INF, -1, 1e4 + 1, "1", False])
@pytest.mark.parametrize("key", ["semantic", "acoustic", "monologue", "wait"])
def test_bad_loss_weight_is_refused(dataset, key, value):
    with pytest.raises(flmstream.FlmError, match=rf'loss_weights\["{key}"\]: loss weight of class '
                       rf'"{key}" is {re.escape(repr(value))}, expected a number in \[0, 10000\]'):
        flmstream.Dataset(dataset, loss_weights={key: value})


def test_unknown_loss_class_is_refused(dataset):
    with pytest.raises(flmstream.FlmError, match=r'loss_weights\["semnatic"\]: no such loss class '
                       r"\(known: semantic, acoustic, monologue, wait\)"):
        flmstream.Dataset(dataset, loss_weights={"semnatic": 1.0})


def test_recipe_weights_are_checked_and_named(dataset, tmp_path):
    """Python's json reads NaN and Infinity; the recipe's keys are checked as the C parser
    checks them, and the message names the recipe file."""
    recipe = tmp_path / "r.json"
    recipe.write_text('{"kind": "recipe", "name": "t", "stage": "s", '
                      '"corpus_weights": {"synthetic-en": NaN}}')
    with pytest.raises(flmstream.FlmError, match=rf'{re.escape(str(recipe))}: corpus_weights'
                       r'\["synthetic-en"\]: weight of corpus "synthetic-en" is nan'):
        flmstream.Dataset(dataset, recipe=str(recipe))
    recipe.write_text('{"kind": "recipe", "name": "t", "stage": "s", '
                      '"loss_weights": {"wait": Infinity}}')
    with pytest.raises(flmstream.FlmError, match=rf'{re.escape(str(recipe))}: loss_weights'
                       r'\["wait"\]: loss weight of class "wait" is inf'):
        flmstream.Dataset(dataset, recipe=str(recipe))
    recipe.write_text('{"kind": "recipe", "name": "t", "stage": "s", '
                      '"corpus_weights": {"synthetic-zh": 1, "synthetic-jp": 2}}')
    with pytest.raises(flmstream.FlmError, match=r'corpus_weights\["synthetic-jp"\]: the dataset '
                       r'has no corpus "synthetic-jp"'):
        flmstream.Dataset(dataset, recipe=str(recipe))


# -- resume positions --------------------------------------------------------------------------

def test_case8_resume_beyond_the_epoch_is_refused(dataset):
    """Case 8: load_state_dict(consumed=10**12) emptied the epoch, silently."""
    ds = flmstream.Dataset(dataset, seed=3)
    state = ds.state_dict()
    first = ds[0]["id"]
    with pytest.raises(flmstream.FlmError, match=r"resume position 1000000000000 is beyond the "
                       r"end of epoch 0 \(1200 samples\)"):
        ds.load_state_dict(dict(state, consumed=10**12))
    assert len(ds) == 1200 and ds[0]["id"] == first  # left as it was
    with pytest.raises(flmstream.FlmError, match=r"beyond the end of epoch 2 \(2400 samples\)"):
        flmstream.Dataset(dataset, seed=3, weights={"*": 2}).load_state_dict(
            {"seed": 3, "epoch": 2, "consumed": 2401, "weights": {"*": 2}})
    for bad in (-1, 2.5, "7", None):
        with pytest.raises(flmstream.FlmError, match=rf"consumed is {re.escape(repr(bad))}, "
                           r"expected an integer >= 0"):
            ds.load_state_dict(dict(state, consumed=bad))
    ds.load_state_dict(dict(state, consumed=1200))  # the end of the epoch is a position
    assert len(ds) == 0 and list(ds) == []
    with pytest.raises(ValueError, match="another seed, mixture or shuffle"):
        flmstream.Dataset(dataset, seed=3, shuffle=False).load_state_dict(state)

