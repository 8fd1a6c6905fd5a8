"""Tiny real inputs of every recommender dataset's format, for ``DatasetSpec.example`` (the contract suite builds each).

Each ``write_*(folder)`` writes files in the layout its loader reads and returns the dataset parameters
that read them. Seeded: the same files on every call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def write_ml100k(folder: Path) -> Path:
    """A MovieLens-100K folder in GroupLens' layout: ``u.data`` (tab-separated, no header: user, item, rating,
    time), ``u.item`` (``|``-separated, Latin-1, 19 genre flags) and ``u.genre``; 20 users rate 8 of 30 films."""
    root = folder / "ml-100k"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (root / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n", encoding="latin-1")
    items = []
    for movie in range(1, 31):
        flags = ["0"] * len(GENRES)
        flags[1 + movie % 3] = "1"
        items.append("|".join([str(movie), f"Film {movie} ({1950 + movie})", "01-Jan-1995", "", "http://example.org", *flags]))
    (root / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    rows = [(u, m, int(rng.integers(3, 6)) if u % 4 == 0 else int(rng.integers(4, 6)), 881250949 + 10 * u + int(m)) for u in range(1, 21) for m in rng.choice(np.arange(1, 31), 8, replace=False)]
    (root / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in rows))
    return root


def movielens_example(folder: Path) -> dict:
    """``recsys.movielens`` on the 100K layout."""
    return {"path": str(write_ml100k(folder)), "num_tags": 5}


def csv_example(folder: Path) -> dict:
    """``recsys.csv`` on the headerless, tab-separated ``u.data`` of the 100K layout."""
    return {"path": str(write_ml100k(folder) / "u.data"), "rating_col": "rating", "time_col": "time"}


def write_sparse(folder: Path) -> dict:
    """``train.npz`` / ``val.npz`` / ``test.npz`` (``scipy.sparse.save_npz``, 12 users x 16 items) and ``item_features.npy``."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, per_user in (("train", 5), ("val", 1), ("test", 1)):
        rows = np.repeat(np.arange(12), per_user)
        cols = np.concatenate([rng.choice(16, per_user, replace=False) for _ in range(12)])
        sp.save_npz(folder / f"{split}.npz", sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(12, 16)))
        paths[split] = str(folder / f"{split}.npz")
    np.save(folder / "item_features.npy", rng.normal(size=(16, 3)).astype(np.float32))
    return {**paths, "item_features": str(folder / "item_features.npy")}
