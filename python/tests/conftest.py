import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
FLM = os.environ.get("FLM", os.path.join(ROOT, "build", "bin", "flm"))


def flm(*args):
    env = dict(os.environ, FLM_PROGRESS="0")
    return subprocess.run([FLM, *args], check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """1200 short synthetic samples in 24 shards, two corpora (synthetic-en, synthetic-zh)."""
    d = tmp_path_factory.mktemp("ds") / "demo"
    flm("demo", "--synthetic", "--out", str(d), "--samples", "1200", "--per-shard", "50", "--max-frames", "60",
        "--seed", "9")
    return str(d)


@pytest.fixture()
def damaged(dataset, tmp_path):
    d = tmp_path / "damaged"
    shutil.copytree(dataset, d)
    return str(d)


def corrupt_record(dataset, sample_id):
    """Flips a byte inside the compressed record of sample `sample_id`; returns (shard, record)."""
    loc = flm("index", "locate", dataset, sample_id).strip()
    shard, rec = loc.rsplit(":", 1)
    info = json.loads(flm("inspect", shard, "--json"))
    with open(shard, "r+b") as f:
        off = sum(r["csize"] for r in info["records"][: int(rec)]) + 72 + 5
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
    return shard, rec


@pytest.fixture(scope="session")
def mixed(tmp_path_factory):
    """300 synthetic samples of 600..2400 frames (a 4x length range) in 6 shards, two corpora."""
    d = tmp_path_factory.mktemp("mixed") / "demo"
    flm("demo", "--synthetic", "--out", str(d), "--samples", "300", "--per-shard", "50",
        "--max-frames", "2400", "--seed", "5")
    return str(d)
