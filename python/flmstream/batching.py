"""Length-bucketed batches under a frames budget: deterministic, rank-split, exactly resumable.

    ds = flmstream.Dataset("corpus/", seed=1234, epoch=0, rank=rank, world=world, frames=None)
    sampler = BucketSampler(ds, max_frames=32768)          # padded frames per batch
    for numbers in sampler:                                # dataset sample numbers of one batch
        batch = collate_padded([ds.read_sample(n) for n in numbers])
    state = sampler.state_dict()                           # exact after any batch

The batches of an epoch depend only on the dataset, (seed, epoch), the mixture weights, the
shuffle flag, the delays and the sampler's parameters -- not on the rank -- and are built the
same way in every process:

1. The epoch's global order (Dataset.global_sample_numbers: mixture weights, then the seeded
   shuffle; all ranks' samples) and each item's length (frames + the largest delay).
2. Buckets: `num_buckets` length ranges with about as many samples each (quantiles of the
   epoch's item lengths). Each bucket keeps its samples in epoch order.
3. Each bucket is cut, in that order, into batches: a sample joins the current batch while
   (items + 1) * longest <= max_frames (the padded size) and, when given, items < max_items.
   A sample longer than max_frames alone makes a batch of one.
4. The batches of all buckets are shuffled together (Fisher-Yates with a splitmix64 generator
   keyed by seed and epoch: the same on every machine and numpy version).
5. Ranks: the number of batches is made a multiple of `world` by splitting the largest batches in
   two (so every sample of the epoch is in exactly one batch and every rank has the same number
   of batches); batch b goes to rank b mod world. Only when the epoch has fewer samples than
   needed (fewer than `world`) are the last batches dropped.

Resume: state_dict() holds the number of batches consumed by all ranks together (k * world in
lockstep training) with the parameters that define the batches; load_state_dict() continues
with the next batch. With another world size, the batches the old job had not consumed are
evened for the new one (step 5 again) and dealt round-robin; the state then records each world
change ("resumed": [[world, batches], ...]) so that a later resume rebuilds the same list.
"""
import numpy as np

from ._lib import FLM_ERANGE, FlmError
from .dataset import AUD_PAD, N_CHANNELS, TEXT_WAIT, Dataset

_M64 = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return x, z ^ (z >> 31)


def _shuffle(items, seed, epoch):
    """In-place Fisher-Yates keyed by (seed, epoch); the bound is drawn by rejection, exact."""
    state = (seed * 0x2545F4914F6CDD1D ^ (epoch + 0x6A09E667F3BCC909) ^ 0xB0C4E7) & _M64
    for i in range(len(items) - 1, 0, -1):
        n = i + 1
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            state, r = _splitmix64(state)
            if r < limit:
                break
        j = r % n
        items[i], items[j] = items[j], items[i]


def bucket_batches(order, lengths, max_frames, num_buckets=8, max_items=None, seed=0, epoch=0,
                   world=1, shuffle=True):
    """The epoch's batches (lists of dataset sample numbers), all ranks together, in global
    order: batch b belongs to rank b mod world. order: the epoch's sample numbers; lengths:
    item length of each dataset sample (indexed by sample number). See the module docstring."""
    order = np.asarray(order, np.int64)
    if len(order) == 0:
        return []
    lens = np.asarray(lengths, np.int64)[order]
    qs = np.quantile(lens, np.linspace(0, 1, num_buckets + 1)[1:-1], method="lower")
    edges = np.unique(qs)
    bucket_of = np.searchsorted(edges, lens, side="left")  # bucket b: (edges[b-1], edges[b]]
    batches = []
    for b in range(len(edges) + 1):
        idx = np.nonzero(bucket_of == b)[0]  # epoch order within the bucket
        cur, longest = [], 0
        for i in idx:
            ln = int(lens[i])
            m = max(longest, ln)
            if cur and ((len(cur) + 1) * m > max_frames
                        or (max_items is not None and len(cur) >= max_items)):
                batches.append(cur)
                cur, m = [], ln
            cur.append(int(order[i]))
            longest = m
        if cur:
            batches.append(cur)
    if shuffle:
        _shuffle(batches, seed, epoch)
    return _even(batches, world)


def _even(batches, world):
    """Every rank the same number of batches: splits the largest batch (the first of equals) in
    two until the count is a multiple of world; drops the tail only when no batch can split."""
    batches = list(batches)
    while len(batches) % world:
        big = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
        if len(batches[big]) < 2:
            del batches[len(batches) - len(batches) % world:]
            break
        h = (len(batches[big]) + 1) // 2
        batches[big:big + 1] = [batches[big][:h], batches[big][h:]]
    return batches


class BucketSampler:
    """This rank's length-bucketed batches of the dataset's epoch (see the module docstring).

    dataset: a flmstream.Dataset opened with frames=None (its seed, epoch, rank, world, weights,
    shuffle flag and delays are used). max_frames: the budget of padded frames per batch
    (items x longest item). num_buckets: length ranges (quantiles). max_items: an optional cap
    on the items per batch. Iterating yields lists of dataset sample numbers (read them with
    dataset.read_sample) and advances the resume state as each batch is handed out.
    """

    def __init__(self, dataset, max_frames, num_buckets=8, max_items=None):
        if not isinstance(dataset, Dataset):
            raise TypeError("BucketSampler reads a flmstream.Dataset")
        if dataset.frames is not None:
            raise FlmError(f"BucketSampler: the dataset pads every item to frames="
                           f"{dataset.frames}; open it with frames=None (items at their own "
                           f"length, padded per batch by collate_padded)")
        for name, v, lo in (("max_frames", max_frames, 1), ("num_buckets", num_buckets, 1),
                            ("max_items", 1 if max_items is None else max_items, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise FlmError(f"BucketSampler: {name} is {v!r}, expected an integer >= {lo}")
        self.ds = dataset
        self.max_frames, self.num_buckets = int(max_frames), int(num_buckets)
        self.max_items = None if max_items is None else int(max_items)
        self._lengths = dataset.item_lengths()
        self._k = 0  # batches of this rank handed out
        self._chain = []  # [[world, batches consumed], ...]: earlier jobs of this epoch
        self._build()

    def _list(self, chain, world):
        """The batches left for `world` ranks after the jobs in `chain` (see load_state_dict)."""
        ds = self.ds
        first = chain[0][0] if chain else world
        batches = bucket_batches(ds.global_sample_numbers(), self._lengths, self.max_frames,
                                 self.num_buckets, self.max_items, ds.seed, ds.epoch, first,
                                 ds.shuffle)
        for i, (_, done) in enumerate(chain):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else world
            batches = _even(batches[done:], nxt)
        return batches

    def _build(self):
        self._batches = self._list(self._chain, self.ds.world)
        self._epoch = self.ds.epoch

    def _sync(self):
        if self._epoch != self.ds.epoch:  # the dataset moved to another epoch
            self._k, self._chain = 0, []
            self._build()

    @property
    def global_batches(self):
        """The epoch's batches for this world size, all ranks (batch b is rank b mod world's);
        after a resume with another world size, those left by the earlier job(s)."""
        self._sync()
        return self._batches

    def batches(self):
        """This rank's batches of the epoch, from its start."""
        self._sync()
        return self._batches[self.ds.rank::self.ds.world]

    def __len__(self):
        """Batches left on this rank in this epoch."""
        self._sync()
        return len(self._batches) // self.ds.world - self._k

    def __iter__(self):
        self._sync()
        mine = self.batches()
        while self._k < len(mine):
            k = self._k
            self._k += 1
            yield mine[k]

    def set_epoch(self, epoch):
        """Starts epoch `epoch` (of the dataset too) from its beginning."""
        self.ds.set_epoch(epoch)
        self._k, self._chain = 0, []
        self._build()

    def _key(self):
        ds = self.ds
        return {"seed": ds.seed, "weights": dict(ds.weights),
                "shuffle": ds.shuffle, "delays": None if ds.delays is None else list(ds.delays),
                "max_frames": self.max_frames, "num_buckets": self.num_buckets,
                "max_items": self.max_items}

    def state_dict(self):
        """Where this rank is: the batches consumed by all ranks together (k * world) and what
        defines the batches. Plain JSON-able data."""
        self._sync()
        return dict(self._key(), epoch=self.ds.epoch, world=self.ds.world,
                    batches=self._k * self.ds.world, resumed=[list(c) for c in self._chain])

    def load_state_dict(self, state):
        """Continues after the batches consumed according to `state` (no replay, no gap), also
        with another world size (the batches left are evened for the new one). The batches must
        be defined the same way (same seed, mixture, shuffle, delays, sampler parameters):
        otherwise ValueError."""
        key = self._key()
        diff = [k for k in key if k in state and state[k] != key[k]]
        if diff or any(k not in state for k in ("seed", "world", "epoch", "batches")):
            raise ValueError(f"BucketSampler state is for other batches (differs in "
                             f"{', '.join(diff) or 'missing keys'}); the order would differ")
        done = state["batches"]
        if isinstance(done, bool) or not isinstance(done, (int, np.integer)) or done < 0:
            raise FlmError(f"state: batches is {done!r}, expected an integer >= 0")
        old_world = state["world"]
        if isinstance(old_world, bool) or not isinstance(old_world, (int, np.integer)) or \
                old_world < 1:
            raise FlmError(f"state: world is {old_world!r}, expected an integer >= 1")
        if done % old_world:
            raise FlmError(f"state: batches is {done}, not a multiple of world={old_world} "
                           f"(ranks take their batches in lockstep)")
        chain = [[int(w), int(b)] for w, b in state.get("resumed", [])]
        epoch = int(state["epoch"])
        prev = self.ds.epoch, self._k, self._chain
        if epoch != self.ds.epoch:
            self.ds.set_epoch(epoch)
        n = len(self._list(chain, int(old_world)))
        if done > n:
            if self.ds.epoch != prev[0]:
                self.ds.set_epoch(prev[0])
            self._k, self._chain = prev[1], prev[2]
            self._build()
            raise FlmError(f"state: resume position {done} is beyond the end of epoch {epoch} "
                           f"({n} batches)", FLM_ERANGE)
        if old_world == self.ds.world:
            self._chain, self._k = chain, done // old_world
        else:
            self._chain, self._k = chain + [[int(old_world), int(done)]], 0
        self._build()


def padding_fraction(items_or_batches, lengths=None):
    """Padded columns / all columns over batches padded to their longest item. Given lengths
    (by sample number), items_or_batches is a list of batches of sample numbers."""
    total = pad = 0
    for b in items_or_batches:
        ls = [int(lengths[n]) for n in b] if lengths is not None else [it["mask"].sum() for it in b]
        total += len(ls) * max(ls)
        pad += len(ls) * max(ls) - sum(ls)
    return pad / total if total else 0.0


def collate_padded(items):
    """Pads a list of items (numpy, any lengths) to the longest: tokens with <wait> (text) and
    AUD_PAD (audio), loss_class 0, loss_weight 0, mask False. Returns a dict of numpy arrays
    (tokens int32 [B, 17, T], loss_class uint8, loss_weight float32, mask bool [B, T],
    n_frames int64 [B]) and the other fields as lists."""
    t = max(it["tokens"].shape[1] for it in items)
    b = len(items)
    fill = np.array([TEXT_WAIT] + [AUD_PAD] * (N_CHANNELS - 1), np.int32)
    tokens = np.empty((b, N_CHANNELS, t), np.int32)
    tokens[:] = fill[None, :, None]
    classes = np.zeros((b, N_CHANNELS, t), np.uint8)
    weights = np.zeros((b, N_CHANNELS, t), np.float32)
    mask = np.zeros((b, t), bool)
    for i, it in enumerate(items):
        n = it["tokens"].shape[1]
        tokens[i, :, :n] = it["tokens"]
        classes[i, :, :n] = it["loss_class"]
        weights[i, :, :n] = it["loss_weight"]
        mask[i, :n] = it["mask"]
    out = {"tokens": tokens, "loss_class": classes, "loss_weight": weights, "mask": mask,
           "n_frames": np.array([it["n_frames"] for it in items], np.int64)}
    for key in items[0]:
        if key not in out:
            out[key] = [it[key] for it in items]
    return out
