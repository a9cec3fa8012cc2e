"""PyTorch adapters that keep an exact resume state.

    from flmstream.torch import Loader
    loader = Loader(ds, batch_size=8, num_workers=2)      # builds the DataLoader itself
    if resume_state: loader.load_state_dict(resume_state)
    for batch in loader: ...
        state = loader.state_dict()                       # after every batch the loop received

The state lives in the Dataset (its `_k`: samples of this rank consumed) and is advanced in the
main process, by the Loader when it hands a batch to the training loop, or by TorchIterable when
a single-process DataLoader takes an item. What workers have prefetched but the loop has not
received is not counted, so a state taken at any point resumes with no replay and no gap.

Loader: this rank's remaining samples are cut into chunks of `batch_size`; worker w of n reads
and collates chunks w, w+n, ...; the DataLoader (batch_size=None) returns the workers' outputs
round-robin, that is in chunk order, and the Loader checks each chunk's number before counting
it, so a reordering DataLoader raises instead of corrupting the state.

TorchIterable: items for a DataLoader you build yourself, any batch size, num_workers=0 only
(with workers the dataset cannot see what the training loop received, so it refuses).
"""
import logging

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ._lib import FlmError
from .batching import BucketSampler
from .batching import collate_padded as _collate_padded_np
from .dataset import Dataset

log = logging.getLogger("flmstream")


def to_torch(item):
    """Item with tensors: tokens int64, loss_class uint8, loss_weight float32, mask bool."""
    out = dict(item)
    out["tokens"] = torch.from_numpy(item["tokens"].astype(np.int64))
    out["loss_class"] = torch.from_numpy(item["loss_class"])
    out["loss_weight"] = torch.from_numpy(item["loss_weight"])
    out["mask"] = torch.from_numpy(item["mask"])
    return out


def collate(items):
    """Stacks tensors; keeps the other fields as lists."""
    batch = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        batch[key] = torch.stack(vals) if torch.is_tensor(vals[0]) else vals
    return batch


def collate_padded(items):
    """Pads numpy items of any lengths to the longest (see flmstream.batching.collate_padded):
    tokens int64 [B, 17, T], loss_class uint8, loss_weight float32 (0 on padding), mask bool
    [B, T], n_frames int64 [B]; other fields as lists."""
    b = _collate_padded_np(items)
    b["tokens"] = torch.from_numpy(b["tokens"].astype(np.int64))
    for key in ("loss_class", "loss_weight", "mask", "n_frames"):
        b[key] = torch.from_numpy(b[key])
    return b


class TorchIterable(IterableDataset):
    """This rank's items in epoch order, for a DataLoader with num_workers=0 (any batch size).

    state_dict() counts the items the DataLoader has taken (a batch is handed to the loop as
    soon as it is full), so it is exact at any point of the loop. With num_workers > 0 the
    DataLoader iterates copies of this object in worker processes and the one the training loop
    holds sees nothing, so iterating in a worker raises FlmError: use Loader. `batch_size` is
    not needed; when given, Loader checks that it matches its own.
    """

    def __init__(self, dataset, batch_size=None):
        super().__init__()
        if not isinstance(dataset, Dataset):
            raise TypeError("TorchIterable wraps a flmstream.Dataset")
        self.ds = dataset
        self.batch_size = None if batch_size is None else int(batch_size)

    def __len__(self):
        """Items left in this rank's epoch."""
        return len(self.ds) - self.ds._k

    def __iter__(self):
        info = get_worker_info()
        if info is not None:
            raise FlmError(
                f"flmstream.torch.TorchIterable in a DataLoader with num_workers="
                f"{info.num_workers}: the order in which the workers' batches reach the training "
                f"loop depends on the DataLoader's batch size, which the dataset cannot see, so "
                f"no exact resume state can be kept; use flmstream.torch.Loader(dataset, "
                f"batch_size=..., num_workers={info.num_workers}) (or num_workers=0)")
        for item in self.ds:  # advances the dataset's count as each item is taken
            yield to_torch(item)

    def state_dict(self, items_seen=None):
        """Resume point after the items taken so far (no arguments: the adapter counts)."""
        if items_seen is not None:
            raise FlmError("TorchIterable.state_dict() takes no items_seen: the adapter counts "
                           "the items the DataLoader took (and refuses worker processes)")
        return self.ds.state_dict()

    def load_state_dict(self, state):
        self.ds.load_state_dict(state)

    def set_epoch(self, epoch):
        """Starts epoch `epoch` from its beginning (the dataset's set_epoch)."""
        self.ds.set_epoch(epoch)


def _identity(x):
    return x


class _Chunks(IterableDataset):
    """Worker side of Loader: this rank's samples [start, len) cut into chunks of `size`;
    worker w of n yields chunks w, w+n, ... as (chunk number, samples covered, batch or None:
    every sample of the chunk skipped)."""

    def __init__(self, ds, start, size, n_chunks, collate_fn):
        super().__init__()
        self.ds, self.start, self.size, self.n_chunks = ds, start, size, n_chunks
        self.collate_fn = collate_fn

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        n = len(self.ds)
        for c in range(wid, self.n_chunks, nw):
            lo = self.start + c * self.size
            hi = min(n, lo + self.size)
            items = []
            for k in range(lo, hi):
                try:
                    items.append(to_torch(self.ds[k]))
                except FlmError as e:
                    if self.ds.on_error == "raise":
                        raise
                    log.warning("flmstream: skipping epoch position %d: %s",
                                self.ds.position(k), e)
            yield c, hi - lo, self.collate_fn(items) if items else None


class Loader:
    """A torch DataLoader over this rank's share of the epoch that keeps the resume state.

    dataset: a flmstream.Dataset (or a TorchIterable of one). Batches are collate_fn(list of
    items) (default `collate`: tensors stacked, other fields as lists), built in the workers.
    drop_last: the epoch's last batch is left out when it is short. Other keyword arguments go
    to torch.utils.data.DataLoader (pin_memory, prefetch_factor, worker_init_fn, timeout,
    multiprocessing_context, ...), except those that would change the order or reuse stale
    workers: sampler, batch_sampler, shuffle, persistent_workers=True, in_order=False.

    Iterating starts at the dataset's current position (the start of the epoch, the loaded
    state, or where a previous, interrupted iteration stopped) and advances it by each batch the
    loop receives; state_dict() is then exact at any point, whatever batch_size and
    num_workers. After the epoch, set_epoch(e) starts another.
    """

    _REFUSED = {
        "sampler": "the order is the dataset's epoch order",
        "batch_sampler": "the order is the dataset's epoch order",
        "shuffle": "the order is the dataset's epoch order (Dataset(shuffle=...))",
    }

    def __init__(self, dataset, batch_size=1, num_workers=0, collate_fn=collate, drop_last=False,
                 **dataloader_kwargs):
        if isinstance(dataset, TorchIterable):
            if dataset.batch_size is not None and dataset.batch_size != batch_size:
                raise FlmError(
                    f"Loader: TorchIterable(batch_size={dataset.batch_size}) but Loader("
                    f"batch_size={batch_size}): the batches the loop receives are the Loader's; "
                    f"pass the Dataset (or a TorchIterable of the same batch size)")
            dataset = dataset.ds
        if not isinstance(dataset, Dataset):
            raise TypeError("Loader reads a flmstream.Dataset")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise FlmError(f"Loader: batch_size is {batch_size!r}, expected an integer >= 1")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise FlmError(f"Loader: num_workers is {num_workers!r}, expected an integer >= 0")
        for key, why in self._REFUSED.items():
            if key in dataloader_kwargs:
                raise FlmError(f"Loader: DataLoader argument {key}= is not accepted: {why}")
        if dataloader_kwargs.get("persistent_workers"):
            raise FlmError("Loader: persistent_workers=True is not accepted: persistent workers "
                           "keep the copy of the dataset made at the first iteration and would "
                           "read from a stale position after load_state_dict or set_epoch")
        if dataloader_kwargs.get("in_order", True) is False:
            raise FlmError("Loader: in_order=False is not accepted: the resume state counts "
                           "batches in epoch order")
        self.dataset = dataset
        self.batch_size, self.num_workers = batch_size, num_workers
        self.collate_fn, self.drop_last = collate_fn or collate, bool(drop_last)
        self.dataloader_kwargs = dataloader_kwargs

    def _n_chunks(self, start):
        left = len(self.dataset) - start
        return left // self.batch_size if self.drop_last else -(-left // self.batch_size)

    def __len__(self):
        """Batches left in this rank's epoch."""
        return self._n_chunks(self.dataset._k)

    def __iter__(self):
        ds = self.dataset
        start, gen = ds._k, ds._generation
        n_chunks = self._n_chunks(start)
        chunks = _Chunks(ds, start, self.batch_size, n_chunks, self.collate_fn)
        dl = DataLoader(chunks, batch_size=None, num_workers=self.num_workers,
                        collate_fn=_identity, **self.dataloader_kwargs)
        want, k = 0, start
        batches = iter(dl)
        while True:
            try:
                c, n, batch = next(batches)
            except StopIteration:
                break
            except Exception as e:
                # torch re-raises a worker's error (its traceback is in the message) from a frame
                # that holds the exception: a reference cycle that keeps the DataLoader alive
                # until a gc pass, when its workers' shutdown stalls (5 s each). Dropping torch's
                # frames lets the workers go as soon as the exception does.
                raise e.with_traceback(None)
            if c != want:
                raise FlmError(f"Loader: the DataLoader returned chunk {c} where chunk {want} was "
                               f"due; the resume state would be wrong")
            if ds._generation != gen or ds._k != k:
                raise FlmError("Loader: the dataset was moved (load_state_dict, set_epoch or "
                               "another iteration) while this iteration was running; start a "
                               "new iteration")
            want, k = want + 1, k + n
            ds._k = k
            if batch is not None:
                yield batch
        if want != n_chunks:
            raise FlmError(f"Loader: the DataLoader ended after {want} of {n_chunks} batches")

    def state_dict(self):
        """Resume point after every batch the training loop has received."""
        return self.dataset.state_dict()

    def load_state_dict(self, state):
        self.dataset.load_state_dict(state)

    def set_epoch(self, epoch):
        self.dataset.set_epoch(epoch)


class _Batches(IterableDataset):
    """Worker side of BucketLoader: batches [start, start + n) of this rank (lists of sample
    numbers); worker w of nw reads and collates batches w, w+nw, ... and yields (number - start,
    batch or None: every sample skipped)."""

    def __init__(self, ds, batches, collate_fn):
        super().__init__()
        self.ds, self.batches, self.collate_fn = ds, batches, collate_fn

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        for c in range(wid, len(self.batches), nw):
            items = []
            for n in self.batches[c]:
                try:
                    items.append(self.ds.read_sample(n))
                except FlmError as e:
                    if self.ds.on_error == "raise":
                        raise
                    log.warning("flmstream: skipping sample %d: %s", n, e)
            yield c, self.collate_fn(items) if items else None


class BucketLoader:
    """A torch DataLoader over this rank's length-bucketed batches (flmstream.batching.
    BucketSampler) that keeps the exact resume state.

        ds = flmstream.Dataset("corpus/", seed=1, rank=rank, world=world, frames=None)
        loader = BucketLoader(BucketSampler(ds, max_frames=32768), num_workers=2)
        for batch in loader: ...              # padded to the batch's longest item, with masks
        state = loader.state_dict()           # exact after any batch
        loader.set_epoch(e)

    Workers read and collate (collate_fn, default collate_padded) batches round-robin; the
    DataLoader returns them in request order and the sampler's count advances in the main
    process as each batch reaches the loop, so the state never counts prefetched batches. Other
    keyword arguments go to torch.utils.data.DataLoader, except sampler, batch_sampler, shuffle,
    persistent_workers=True and in_order=False (refused as in Loader).
    """

    def __init__(self, sampler, num_workers=0, collate_fn=collate_padded, **dataloader_kwargs):
        if not isinstance(sampler, BucketSampler):
            raise TypeError("BucketLoader reads a flmstream.batching.BucketSampler")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise FlmError(f"BucketLoader: num_workers is {num_workers!r}, expected an integer "
                           f">= 0")
        for key, why in Loader._REFUSED.items():
            if key in dataloader_kwargs:
                raise FlmError(f"BucketLoader: DataLoader argument {key}= is not accepted: {why}")
        if "batch_size" in dataloader_kwargs:
            raise FlmError("BucketLoader: batch_size= is not accepted: the sampler makes the "
                           "batches (max_frames, max_items)")
        if dataloader_kwargs.get("persistent_workers"):
            raise FlmError("BucketLoader: persistent_workers=True is not accepted: persistent "
                           "workers would read from a stale position")
        if dataloader_kwargs.get("in_order", True) is False:
            raise FlmError("BucketLoader: in_order=False is not accepted: the resume state "
                           "counts batches in order")
        self.sampler, self.num_workers = sampler, num_workers
        self.collate_fn = collate_fn or collate_padded
        self.dataloader_kwargs = dataloader_kwargs

    def __len__(self):
        """Batches left on this rank in this epoch."""
        return len(self.sampler)

    def __iter__(self):
        s = self.sampler
        start, epoch = s._k, s.ds.epoch
        todo = s.batches()[start:]
        dl = DataLoader(_Batches(s.ds, todo, self.collate_fn), batch_size=None,
                        num_workers=self.num_workers, collate_fn=_identity,
                        **self.dataloader_kwargs)
        want = 0
        batches = iter(dl)
        while True:
            try:
                c, batch = next(batches)
            except StopIteration:
                break
            except Exception as e:  # see Loader.__iter__
                raise e.with_traceback(None)
            if c != want:
                raise FlmError(f"BucketLoader: the DataLoader returned batch {c} where batch "
                               f"{want} was due; the resume state would be wrong")
            if s.ds.epoch != epoch or s._k != start + want:
                raise FlmError("BucketLoader: the sampler was moved (load_state_dict, set_epoch "
                               "or another iteration) while this iteration was running; start "
                               "a new iteration")
            want += 1
            s._k = start + want
            if batch is not None:
                yield batch
        if want != len(todo):
            raise FlmError(f"BucketLoader: the DataLoader ended after {want} of {len(todo)} "
                           f"batches")

    def state_dict(self):
        """Resume point after every batch the training loop has received."""
        return self.sampler.state_dict()

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state)

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)
