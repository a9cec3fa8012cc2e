"""Deterministic, weighted, resumable epochs over an flmstream dataset."""
import json
import logging

import numpy as np

from ._lib import FLM_ERANGE, FlmError, check, ffi, lib

N_CHANNELS = 17
LOSS_CLASSES = ("none", "semantic", "acoustic", "monologue", "wait")


def _profiles():
    p = ffi.new("flm_profiles *")
    lib.flm_profiles_default(p)
    return p


# The published FLM-Audio profiles (libstream's flm_profiles_default, the values of
# schemas/profiles): the default loss weights (DESIGN section 3: speak semantic a1, speak acoustic
# a2, monologue b, wait g), the initial/pad tokens and the delays.
_P = _profiles()
DEFAULT_LOSS_WEIGHTS = {c: float(_P.model.loss_weights[i]) for i, c in enumerate(LOSS_CLASSES)
                        if i}
TEXT_WAIT = int(_P.vocab.text_wait)
AUD_PAD = int(_P.codec.aud_pad)
FLM_DELAYS = tuple(int(d) for d in _P.model.delays)
del _P
# The ranges recipes accept (libstream/recipe.c): corpus weights [0, 1000], loss weights [0, 1e4].
MAX_CORPUS_WEIGHT = 1000.0
MAX_LOSS_WEIGHT = 1e4

log = logging.getLogger("flmstream")


def _recipe(path):
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    return r.get("corpus_weights"), r.get("loss_weights")


def _is_weight(v, hi):
    """A real number in [0, hi]; NaN fails the comparison, bools are not numbers here."""
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and 0 <= v <= hi)


def _check_corpus_weights(weights, where):
    if not isinstance(weights, dict):
        raise FlmError(f"{where}: expected a dict {{corpus: weight}}, got "
                       f"{type(weights).__name__}")
    for k, v in weights.items():
        if not isinstance(k, str):
            raise FlmError(f"{where}: corpus names are strings, got {k!r}")
        if not _is_weight(v, MAX_CORPUS_WEIGHT):
            also = " (every corpus not listed)" if k == "*" else ""
            raise FlmError(f'{where}["{k}"]: weight of corpus "{k}"{also} is {v!r}, expected a '
                           f"number in [0, {MAX_CORPUS_WEIGHT:g}]")


def _check_loss_weights(weights, where):
    if not isinstance(weights, dict):
        raise FlmError(f"{where}: expected a dict {{class: weight}}, got "
                       f"{type(weights).__name__}")
    for k, v in weights.items():
        if k not in DEFAULT_LOSS_WEIGHTS:
            raise FlmError(f'{where}["{k}"]: no such loss class (known: '
                           f'{", ".join(LOSS_CLASSES[1:])})')
        if not _is_weight(v, MAX_LOSS_WEIGHT):
            raise FlmError(f'{where}["{k}"]: loss weight of class "{k}" is {v!r}, expected a '
                           f"number in [0, {MAX_LOSS_WEIGHT:g}]")


def s_(p):
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8")


class Dataset:
    """One rank's view of a shuffled, weighted epoch of a dataset.

    index: dataset directory or index.sqlite. weights: {corpus: weight} (a corpus not listed has
    weight 1; 5.0 means five copies per epoch, 0.5 each sample with probability 1/2), or recipe: a
    recipe JSON with "corpus_weights" and "loss_weights". frames: items are padded to this many
    frames; None gives each item at its own length (with the delay view: its length plus the
    largest delay). A sample longer than `frames` raises FlmError when the dataset is opened
    (naming how many and the longest) unless truncate=True, which cuts it (item["truncated"]
    says so). The corpus name "*" sets the weight of every corpus not listed. Weights
    are checked as recipes are: a NaN, infinite, negative or too large weight, a corpus the
    dataset does not have, or an unknown loss class raises FlmError naming the key.
    delays: None (aligned time), "flm" (the FLM-Audio delays) or 17 ints.
    on_error: "raise" (default) or "skip" (log and go to the next sample).
    """

    def __init__(self, index, seed=0, epoch=0, rank=0, world=1, weights=None, recipe=None,
                 loss_weights=None, frames=8192, delays=None, on_error="raise", shuffle=True,
                 truncate=False):
        w_where, l_where = "weights", "loss_weights"
        if recipe is not None:
            rw, rl = _recipe(recipe)
            if weights is None and rw is not None:
                weights, w_where = rw, f"{recipe}: corpus_weights"
            if loss_weights is None and rl is not None:
                loss_weights, l_where = rl, f"{recipe}: loss_weights"
        if on_error not in ("raise", "skip"):
            raise ValueError("on_error must be 'raise' or 'skip'")
        _check_corpus_weights(weights or {}, w_where)
        _check_loss_weights(loss_weights or {}, l_where)
        self.index = str(index)
        self.seed, self.epoch, self.rank, self.world = int(seed), int(epoch), int(rank), int(world)
        self.weights = dict(weights or {})
        lw = dict(DEFAULT_LOSS_WEIGHTS)
        lw.update(loss_weights or {})
        self._class_weight = np.array([0.0] + [lw[c] for c in LOSS_CLASSES[1:]], np.float32)
        if frames is not None and (isinstance(frames, bool) or int(frames) < 1):
            raise FlmError(f"frames is {frames!r}, expected an integer >= 1 or None")
        self.frames = None if frames is None else int(frames)
        self.truncate = bool(truncate)
        if delays == "flm":
            delays = FLM_DELAYS
        self.delays = None if delays is None else tuple(int(d) for d in delays)
        if self.delays is not None and (len(self.delays) != N_CHANNELS or min(self.delays) < 0):
            raise ValueError("delays must be 17 non-negative integers")
        self._extra = 0 if self.delays is None else max(self.delays)
        self.on_error = on_error
        self.shuffle = bool(shuffle)
        self._start = 0  # global samples of this epoch consumed before this object started
        self._k = 0  # samples this rank has taken since then
        self._generation = 0  # counts epoch rebuilds (set_epoch, load_state_dict): see torch.py
        self._ds = None
        self._ep = None
        self._open(check_corpora=w_where)

    # -- C handles -------------------------------------------------------------------------
    def _open(self, check_corpora=None):
        err = ffi.new("flm_error *")
        p = ffi.new("flm_dataset **")
        check(lib.flm_dataset_open(p, self.index.encode(), err), err)
        self._ds = p[0]
        listed = [k for k in self.weights if k != "*"]
        if check_corpora and listed:  # once, in the process that made the object
            have = set(self.corpora())
            for k in listed:
                if k not in have:
                    self.close()
                    raise FlmError(f'{check_corpora}["{k}"]: the dataset has no corpus "{k}" '
                                   f"(its corpora: {', '.join(sorted(have)) or 'none'})")
        if check_corpora and self.frames is not None and not self.truncate:
            self._check_lengths()
        self._build_epoch()

    def _check_lengths(self):
        lengths = self.item_lengths()
        long = lengths > self.frames
        if long.any():
            n, i = int(long.sum()), int(lengths.argmax())
            self.close()
            raise FlmError(
                f"{self.index}: {n} of {len(lengths)} samples are longer than frames="
                f"{self.frames} (the longest: sample {i}, {int(lengths[i])} frames"
                f"{' with the delays' if self._extra else ''}); pass frames=None (each item at "
                f"its own length; flmstream.batching.BucketSampler batches them by length) or "
                f"truncate=True to cut them", FLM_ERANGE)

    def item_lengths(self):
        """Length in frames of each dataset sample's item (index order, numpy int64): the
        sample's frames plus the largest delay when a delay view is applied (one pass over the
        sample table, about a second per million samples)."""
        f, ds = lib.flm_dataset_frames, self._ds
        n = int(lib.flm_dataset_count(ds))
        return np.fromiter((f(ds, i) for i in range(n)), np.int64, n) + self._extra

    def global_sample_numbers(self):
        """Dataset sample numbers of the whole epoch (all ranks, global position order), from
        the epoch's start whatever this rank's resume point."""
        err = ffi.new("flm_error *")
        params = self._epoch_params(rank=0, world=1, start=0)
        p = ffi.new("flm_epoch **")
        check(lib.flm_epoch_create(p, self._ds, params[0], err), err)
        try:
            n = int(lib.flm_epoch_size(p[0]))
            f, e = lib.flm_epoch_sample, p[0]
            return np.fromiter((f(e, k) for k in range(n)), np.int64, n)
        finally:
            lib.flm_epoch_destroy(p)

    def _epoch_params(self, rank, world, start):
        """(params, keep-alive objects) for flm_epoch_create."""
        params = ffi.new("flm_epoch_params *", lib.flm_epoch_default_params())
        params.seed, params.epoch = self.seed, self.epoch
        params.rank, params.world, params.start = rank, world, start
        params.shuffle = 1 if self.shuffle else 0
        listed = {k: float(v) for k, v in self.weights.items() if k != "*"}
        params.default_weight = float(self.weights.get("*", 1.0))
        names = [ffi.new("char[]", k.encode()) for k in listed]
        cnames = ffi.new("const char *[]", names) if names else ffi.NULL
        cweights = ffi.new("double[]", list(listed.values())) if names else ffi.NULL
        params.corpora, params.weights, params.n_weights = cnames, cweights, len(names)
        return params, (names, cnames, cweights)

    def _build_epoch(self):
        self._close_epoch()
        err = ffi.new("flm_error *")
        params, keep = self._epoch_params(self.rank, self.world, self._start)
        p = ffi.new("flm_epoch **")
        check(lib.flm_epoch_create(p, self._ds, params, err), err)
        self._ep = p[0]
        self._generation += 1

    def _close_epoch(self):
        if self._ep is not None:
            lib.flm_epoch_destroy(ffi.new("flm_epoch **", self._ep))
            self._ep = None

    def close(self):
        self._close_epoch()
        if self._ds is not None:
            lib.flm_dataset_close(ffi.new("flm_dataset **", self._ds))
            self._ds = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    # pickling (DataLoader workers): reopen the C handles in the new process
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ds"] = state["_ep"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._open()

    def corpora(self):
        """The corpus names of the dataset's samples, sorted (one pass over the sample table:
        about a second per million samples)."""
        f, ds = lib.flm_dataset_corpus, self._ds
        ptrs = set(map(lambda i: f(ds, i), range(int(lib.flm_dataset_count(ds)))))
        return sorted(ffi.string(p).decode("utf-8") for p in ptrs)

    # -- epoch -----------------------------------------------------------------------------
    def __len__(self):
        """Samples this rank reads in this epoch (from the resume point on)."""
        return int(lib.flm_epoch_size(self._ep))

    @property
    def global_size(self):
        """Samples of the whole epoch, all ranks together (after mixture weights)."""
        return int(lib.flm_epoch_global_size(self._ep))

    def positions(self):
        """Global epoch positions of this rank's samples, in order (numpy int64)."""
        return np.array([lib.flm_epoch_position(self._ep, k) for k in range(len(self))], np.int64)

    def position(self, k):
        """Global epoch position of this rank's k-th sample (-1 when out of range)."""
        return int(lib.flm_epoch_position(self._ep, k))

    def sample_numbers(self):
        """Dataset sample numbers (index order) of this rank's samples, in order."""
        return np.array([lib.flm_epoch_sample(self._ep, k) for k in range(len(self))], np.int64)

    def set_epoch(self, epoch):
        """Starts epoch `epoch` from its beginning."""
        self.epoch, self._start, self._k = int(epoch), 0, 0
        self._build_epoch()

    def state_dict(self):
        """Where this rank is: enough to resume exactly, also with another world size."""
        return {"seed": self.seed, "epoch": self.epoch, "world": self.world,
                "consumed": self._start + self._k * self.world, "weights": dict(self.weights),
                "shuffle": self.shuffle}

    def load_state_dict(self, state):
        """Continues after the samples consumed according to `state` (no replay). `consumed`
        counts samples of the epoch taken by all ranks together; a different world size is
        fine: the remaining positions are split among the new ranks. A position beyond the
        epoch's end raises FlmError (and leaves this object as it was)."""
        if (state["seed"] != self.seed or state.get("weights", self.weights) != self.weights
                or state.get("shuffle", self.shuffle) != self.shuffle):
            raise ValueError("state is for another seed, mixture or shuffle; the order would "
                             "differ")
        consumed = state["consumed"]
        if (isinstance(consumed, bool) or not isinstance(consumed, (int, np.integer))
                or consumed < 0):
            raise FlmError(f"state: consumed is {consumed!r}, expected an integer >= 0")
        old = self.epoch, self._start, self._k
        self.epoch = int(state["epoch"])
        self._start, self._k = int(consumed), 0
        self._build_epoch()
        if self._start > self.global_size:
            n = self.global_size
            self.epoch, self._start, self._k = old
            self._build_epoch()
            raise FlmError(f"state: resume position {consumed} is beyond the end of epoch "
                           f"{int(state['epoch'])} ({n} samples)", FLM_ERANGE)

    # -- items -----------------------------------------------------------------------------
    def read_sample(self, n, frames=...):
        """Item of dataset sample number n (index order), independent of the epoch. frames:
        as the Dataset's `frames` (default: the Dataset's), e.g. None for its own length."""
        err = ffi.new("flm_error *")
        v = ffi.new("flm_record_view *")
        check(lib.flm_dataset_read(self._ds, n, v, err), err)
        return self._item(v, self.frames if frames is ... else frames)

    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(k)
        item = self.read_sample(int(lib.flm_epoch_sample(self._ep, k)))
        item["position"] = int(lib.flm_epoch_position(self._ep, k))
        return item

    def __iter__(self):
        while self._k < len(self):
            k = self._k
            self._k += 1
            try:
                yield self[k]
            except FlmError as e:
                if self.on_error == "raise":
                    raise
                log.warning("flmstream: skipping epoch position %d: %s",
                            lib.flm_epoch_position(self._ep, k), e)

    def _item(self, v, n):
        t = int(v.n_frames)
        tokens = np.frombuffer(ffi.buffer(v.tokens, 4 * N_CHANNELS * t), np.int32).reshape(N_CHANNELS, t)
        classes = np.frombuffer(ffi.buffer(v.loss_class, N_CHANNELS * t), np.uint8).reshape(N_CHANNELS, t)
        fill = np.array([TEXT_WAIT] + [AUD_PAD] * (N_CHANNELS - 1), np.int32)
        if self.delays is not None:
            md = max(self.delays)
            dt = np.empty((N_CHANNELS, t + md), np.int32)
            dc = np.zeros((N_CHANNELS, t + md), np.uint8)
            for ch, d in enumerate(self.delays):
                dt[ch, :] = fill[ch]
                dt[ch, d:d + t] = tokens[ch]
                dc[ch, d:d + t] = classes[ch]
            tokens, classes, t = dt, dc, t + md
        if n is None:
            n = t
        elif t > n and not self.truncate:  # the dataset changed since it was opened
            raise FlmError(f"{self.index}: sample {s_(v.id)} is {t} frames long, more than "
                           f"frames={n} (truncate=False)", FLM_ERANGE)
        out_t = np.repeat(fill[:, None], n, axis=1)
        out_c = np.zeros((N_CHANNELS, n), np.uint8)
        m = min(t, n)
        out_t[:, :m] = tokens[:, :m]
        out_c[:, :m] = classes[:, :m]
        mask = np.zeros(n, bool)
        mask[:m] = True
        meta, events = self._meta(v)
        s = s_
        return {
            "id": s(v.id), "style": s(v.style), "stage": s(v.stage), "language": s(v.language),
            "corpus": s(v.corpus), "speakers": s(v.speakers), "duration_s": float(v.duration_s),
            "n_frames": int(v.n_frames), "tokens": out_t, "loss_class": out_c,
            "loss_weight": self._class_weight[out_c], "mask": mask,
            "metadata": meta, "events": events, "truncated": t > n,
        }

    @staticmethod
    def _meta(v):
        if v.n_meta == 0 and v.n_events == 0:
            return {}, []
        err = ffi.new("flm_error *")
        p = ffi.new("flm_sample **")
        check(lib.flm_record_to_sample(v, p, err), err)
        try:
            txt = lib.flm_sample_to_json(p[0], 0)
            if txt == ffi.NULL:
                raise MemoryError("flmstream: out of memory decoding metadata")
            d = json.loads(ffi.string(txt).decode("utf-8"))
            lib.free(txt)
        finally:
            lib.flm_sample_destroy(p)
        return d["metadata"], d["events"]
