"""Loaders: implicit conversion, per-user hold-out, unknown ids reported and dropped, id map, errors, generator."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_recsys.datasets import CSVConfig, GeneratedConfig, MovieLensConfig, SparseConfig, generate, load_csv, load_movielens, load_sparse
from omnissl_recsys.graph import normalized_adjacency


def write_log(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("u,i,r,t\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def test_temporal_split_threshold_unknown_ids_and_id_map(tmp_path):
    rows = []
    for t, item in enumerate(["a", "b", "c", "d", "e"]):  # user 1: 5 positives in time order a..e
        rows.append(("u1", item, 5, t))
    rows += [("u1", "low", 2, 10)]  # below the threshold: not an interaction
    rows += [("u2", i, 4, t) for t, i in enumerate(["e", "d", "a", "b", "z"])]  # z is only ever held out: unknown
    id_map = tmp_path / "ids.json"
    cfg = CSVConfig(path=str(write_log(tmp_path, rows)), user_col="u", item_col="i", rating_col="r", time_col="t",
                    split="temporal", val_frac=0.2, test_frac=0.2, min_user_interactions=1, save_id_map=str(id_map))
    with pytest.warns(UserWarning, match="never occurs in training"):
        src = load_csv(cfg)
    items = src.item_ids
    assert "low" not in items and "z" not in items
    by_split = {k: {(src.user_ids[u], items[i]) for u, i in v.tolist()} for k, v in src.interactions.items()}
    assert by_split["test"] == {("u1", "e")}  # the latest interaction of u1; u2's test item z is unknown
    assert by_split["val"] == {("u1", "d"), ("u2", "b")}
    assert by_split["train"] == {("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "e"), ("u2", "d"), ("u2", "a")}
    assert src.dropped == {"train": 0, "val": 0, "test": 1}
    saved = json.loads(id_map.read_text())
    assert saved["items"] == items and saved["users"] == ["u1", "u2"] and saved["dropped"]["test"] == 1


def test_bad_rating_names_file_line_and_column(tmp_path):
    path = write_log(tmp_path, [("u1", "a", 5, 0), ("u1", "b", "five", 1)])
    with pytest.raises(DataError, match=r"line 3, column 'r'"):
        load_csv(CSVConfig(path=str(path), user_col="u", item_col="i", rating_col="r"))


def test_missing_column_lists_columns(tmp_path):
    path = write_log(tmp_path, [("u1", "a", 5, 0)])
    with pytest.raises(DataError, match="missing column"):
        load_csv(CSVConfig(path=str(path), user_col="user", item_col="i"))


def test_sparse_matrices_round_trip(tmp_path):
    import scipy.sparse as sp

    train = sp.coo_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=(3, 4))
    test = sp.coo_matrix((np.ones(2), ([0, 2], [3, 1])), shape=(3, 4))
    sp.save_npz(tmp_path / "train.npz", train)
    sp.save_npz(tmp_path / "test.npz", test)
    src = load_sparse(SparseConfig(train=str(tmp_path / "train.npz"), test=str(tmp_path / "test.npz")))
    assert (src.num_users, src.num_items) == (3, 4)
    assert sorted(map(tuple, src.interactions["test"].tolist())) == [(0, 3), (2, 1)]
    sp.save_npz(tmp_path / "bad.npz", sp.coo_matrix((3, 5)))
    with pytest.raises(DataError, match="shape"):
        load_sparse(SparseConfig(train=str(tmp_path / "train.npz"), test=str(tmp_path / "bad.npz")))


def test_generated_popularity_is_power_law_and_items_carry_fields():
    src = generate(GeneratedConfig(num_users=300, num_items=400, interactions_per_user=20))
    pop = torch.sort(src.popularity, descending=True).values
    assert pop[:40].sum() > 0.3 * pop.sum()  # the top 10% of items take a large share (Zipf)
    assert src.features.field_names == ["id", "category", "tags"]
    mi = src.features.field_mutual_information()
    assert mi[1, 2] > 0.5 * mi[1, 1]  # tags are drawn from the item's category: strongly dependent fields
    batch = src.batch(torch.arange(5))
    assert set(batch) == {"user", "pos"} and batch["user"].shape == (5,)


def test_normalized_adjacency_matches_dense_formula_and_edge_dropout_equals_subgraph():
    users, items = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 0])
    R = torch.zeros(3, 2)
    R[users, items] = 1
    A = torch.zeros(5, 5)
    A[:3, 3:], A[3:, :3] = R, R.T
    d = A.sum(1).clamp_min(1).rsqrt()
    assert torch.allclose(normalized_adjacency(users, items, 3, 2).to_dense(), d[:, None] * A * d[None, :])
    keep = torch.tensor([True, False, True, True])
    sub = normalized_adjacency(users[keep], items[keep], 3, 2).to_dense()
    assert torch.allclose(normalized_adjacency(users, items, 3, 2, keep=keep).to_dense(), sub)


def _movielens() -> Path:
    return Path(os.environ.get("OMNISSL_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data")) / "recsys" / "movielens-latest-small"


def test_movielens_loader_when_available():
    if not (_movielens() / "ratings.csv").is_file():
        pytest.skip("MovieLens latest-small not available (set OMNISSL_DATA)")
    with pytest.warns(UserWarning):
        src = load_movielens(MovieLensConfig(path=str(_movielens())))
    assert src.features.field_names == ["id", "genres", "tags", "decade"]
    total = sum(v.shape[0] for v in src.interactions.values()) + sum(src.dropped.values())
    assert 45_000 < total < 50_000  # ratings >= 4 of the 100,836
    assert src.interactions["test"].shape[0] > src.interactions["val"].shape[0]
