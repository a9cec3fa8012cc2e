"""flmstream: read flmstream datasets (zstd shards + SQLite index) for training.

    import flmstream
    ds = flmstream.Dataset("corpus/", seed=1234, epoch=0, rank=rank, world=world,
                           weights={"transcribed": 0.5, "annotated": 5.0})
    for item in ds:                      # this rank's share of the shuffled, weighted epoch
        tokens, weight = item["tokens"], item["loss_weight"]     # [17, 8192] int32, float32
    state = ds.state_dict()              # save with the model; ds.load_state_dict(state) resumes

See docs/python.md for the exact epoch order, resume semantics and a training-loop example.
"""
from ._lib import FlmError
from .batching import BucketSampler, collate_padded
from .dataset import DEFAULT_LOSS_WEIGHTS, LOSS_CLASSES, Dataset

__all__ = ["Dataset", "FlmError", "BucketSampler", "collate_padded", "DEFAULT_LOSS_WEIGHTS",
           "LOSS_CLASSES"]
