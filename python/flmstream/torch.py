"""PyTorch adapters.

    from flmstream.torch import TorchIterable
    it = TorchIterable(ds, batch_size=8)                   # worker-aware, exact order
    loader = torch.utils.data.DataLoader(it, batch_size=8, num_workers=2)
    for step, batch in enumerate(loader): ...
    state = it.state_dict(items_seen=(step + 1) * 8)      # resume point, saved with the model

Worker split: this rank's sample sequence is cut into chunks of `batch_size`; worker w of n takes
chunks w, w+n, ... The DataLoader returns workers' batches round-robin, so batches arrive in
exactly the rank's sequence order and "items seen" is a prefix of it: resume is exact.
"""
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info


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


class TorchIterable(IterableDataset):
    def __init__(self, dataset, batch_size=1):
        super().__init__()
        self.ds = dataset
        self.batch_size = int(batch_size)
        self._base = dataset.state_dict()

    def __len__(self):
        return len(self.ds)

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        n, b = len(self.ds), self.batch_size
        for chunk in range(wid, (n + b - 1) // b, nw):
            for k in range(chunk * b, min(n, (chunk + 1) * b)):
                yield to_torch(self.ds[k])

    def state_dict(self, items_seen):
        """Resume point after the training loop has received `items_seen` items from this
        iterable (on this rank) since it was created or last loaded."""
        s = dict(self._base)
        s["consumed"] = self._base["consumed"] + items_seen * self.ds.world
        return s

    def load_state_dict(self, state):
        self.ds.load_state_dict(state)
        self._base = self.ds.state_dict()
