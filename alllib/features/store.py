"""The feature store: each image's features on disk, keyed by everything that made them.

One folder per setting (backbone, weights, image transform, :data:`FEATURE_FORMAT_VERSION`)
under :func:`alllib.paths.cache_dir`; one shard file per run, checked (shape, dtype, finite
values, SHA-256) when read, written atomically.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from alllib.paths import cache_dir, read_regular, write_atomic

__all__ = ["FEATURE_FORMAT_VERSION", "FeatureCacheWarning", "FeatureStore", "clear_cache", "regular_file"]

#: Part of every cache key: bump it when the stored features' meaning changes.
FEATURE_FORMAT_VERSION = 2  # 2: every shard carries the SHA-256 of its content


def clear_cache(path: str | os.PathLike | None = None) -> int:
    """Delete every cached feature under the cache folder; returns how many sets were removed."""
    root = cache_dir(path) / f"features-v{FEATURE_FORMAT_VERSION}"
    if not root.is_dir():
        return 0
    n = sum(1 for p in root.iterdir() if p.is_dir())
    shutil.rmtree(root)
    return n


class FeatureCacheWarning(UserWarning):
    """A feature-cache file that was discarded, or a cache folder that cannot be written."""


_PROCESS_START = time.time()


def regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a folder, FIFO, socket or device; links not followed)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _shard_digest(keys: np.ndarray, X: np.ndarray) -> str:
    return hashlib.sha256("\n".join(keys.tolist()).encode() + b"\0" + np.ascontiguousarray(X).tobytes()).hexdigest()


class FeatureStore:
    """Features of one (backbone, weights, transform) setting, one shard file per run.

    A shard that cannot be read or fails its checks (shape, dtype, finite values, its SHA-256)
    is reported by path, deleted and its images recomputed; shards are written to a temporary
    file and renamed, so an interrupted run never leaves half a shard; a folder that cannot be
    written is reported once and the run goes on without storing."""

    #: A temporary shard file older than this (seconds before this process started) was left by
    #: a run that was killed while writing it, and is removed.
    STALE_SECONDS = 600

    def __init__(self, root: Path, setting: dict, dim: int):
        digest = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = root / f"features-v{FEATURE_FORMAT_VERSION}" / digest
        self.setting, self.dim = setting, dim
        self.rows: dict[str, np.ndarray] = {}
        if self.folder.is_dir():
            for shard in sorted(self.folder.glob("shard-*.npz")):
                self._load(shard)
            self._sweep()

    def _sweep(self) -> None:
        """Remove temporary shards that a killed run left behind (never one being written now)."""
        cutoff = _PROCESS_START - self.STALE_SECONDS
        for tmp in self.folder.glob(".tmp-*.npz"):
            try:
                if regular_file(tmp) and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                pass  # a read-only cache keeps them; they are never read

    def _discard(self, shard: Path, problem: str) -> None:
        """Leave a bad shard out of this run, and remove it where the cache can be written."""
        try:
            shard.unlink(missing_ok=True)
            done = "; its images will be recomputed"
        except OSError as err:
            done = f"; it could not be removed ({err.strerror or err}), so it is ignored in this run"
        warnings.warn(f"feature cache: discarding {shard}: {problem}{done}", FeatureCacheWarning, stacklevel=4)

    def _load(self, shard: Path) -> None:
        if not regular_file(shard):  # a folder or a FIFO named like a shard: never opened, never removed
            warnings.warn(f"feature cache: ignoring {shard}: not a regular file", FeatureCacheWarning, stacklevel=3)
            return
        try:  # opened as a regular file, never through a link (regular_file above may be raced)
            with np.load(io.BytesIO(read_regular(shard, follow=False)), allow_pickle=False) as z:
                keys, X, digest = z["keys"], z["X"], str(z["sha256"])
            problem = (f"features of shape {X.shape}, expected (n, {self.dim})" if X.ndim != 2 or X.shape[1] != self.dim
                       else f"{len(keys)} keys for {len(X)} rows" if keys.ndim != 1 or len(keys) != len(X)
                       else f"dtype {X.dtype}, expected float32" if X.dtype != np.float32
                       else "values that are not finite" if not np.isfinite(X).all()
                       else "a checksum that does not match its content" if _shard_digest(keys, X) != digest
                       else None)
        except Exception as err:  # a damaged zip or array raises many types
            problem = f"unreadable ({type(err).__name__}: {err})"
        if problem:
            self._discard(shard, problem)
            return
        self.rows.update(zip(keys.tolist(), X))

    def writable(self) -> bool:
        """Whether shards can be stored here (checked before the work, reported once)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".probe-"):
                pass
            return True
        except OSError as err:
            warnings.warn(f"feature cache: cannot write to {self.folder} ({err.strerror or err}); features are "
                          "computed but not stored (set ALLLIB_CACHE to a writable folder)", FeatureCacheWarning,
                          stacklevel=3)
            return False

    def save(self, keys: list[str], X: np.ndarray) -> None:
        if not keys:
            return
        keys_arr, X = np.array(keys), np.ascontiguousarray(X, dtype=np.float32)
        tmp = None
        try:
            write_atomic(self.folder / "setting.json", json.dumps(self.setting, indent=1, sort_keys=True).encode())
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".tmp-", suffix=".npz", delete=False) as f:
                tmp = Path(f.name)
                np.savez(f, keys=keys_arr, X=X, sha256=np.array(_shard_digest(keys_arr, X)))
            n = len(list(self.folder.glob("shard-*.npz")))
            tmp.replace(self.folder / f"shard-{n:05d}-{os.getpid()}-{tmp.stem[5:]}.npz")
        except OSError as err:
            warnings.warn(f"feature cache: could not store {len(keys)} features in {self.folder} "
                          f"({err.strerror or err}); the run goes on without them", FeatureCacheWarning, stacklevel=3)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

