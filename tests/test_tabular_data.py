"""Table data sets and the ``table`` modality: bundled tables, CSV and Parquet files, one-line errors, CSV out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganforge import modality
from ganforge.config import DataConfig
from ganforge.data import create
from ganforge.errors import DataError

pd = pytest.importorskip("pandas", reason="tables need pandas: pip install 'ganforge[tabular]'")


def test_bundled_tables_split_and_label_by_their_target():
    train, test = create(DataConfig(name="breast_cancer")), create(DataConfig(name="breast_cancer", split="test"))
    assert train.modality == "table" and len(train) + len(test) == 569 and len(test) == round(0.3 * 569)
    assert train.class_names == ["benign", "malignant"] and train.data.shape[1] == test.data.shape[1]
    assert set(train.info["frame"].index) == set(range(len(train)))
    merged = pd.concat([train.info["frame"], test.info["frame"]])
    assert len(merged.drop_duplicates()) == 569  # the splits are disjoint and cover the table
    wine = create(DataConfig(name="wine"))
    assert wine.num_classes == 3 and wine.info["kinds"]["alcohol"] == "continuous"
    diabetes = create(DataConfig(name="diabetes"))
    assert diabetes.labels is None and diabetes.info["kinds"]["target"] == "discrete"  # a regression target


def test_a_csv_file_reads_with_inferred_and_given_kinds(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 50), "city": rng.choice(["Lyon", "Oslo"], 50),
                          "score": rng.normal(size=50), "ok": rng.choice(["yes", "no"], 50)})
    frame.loc[3, "score"] = np.nan
    frame.to_csv(tmp_path / "people.csv", index=False)
    data = create(DataConfig(name="table", root=str(tmp_path / "people.csv"), target="ok"))
    assert data.info["kinds"] == {"age": "discrete", "city": "categorical", "score": "continuous", "ok": "boolean"}
    assert data.class_names == ["no", "yes"]
    given = create(DataConfig(name="table", root=str(tmp_path / "people.csv"), columns={"age": "continuous"}))
    assert given.info["kinds"]["age"] == "continuous"
    frame.to_parquet(tmp_path / "people.parquet")
    assert create(DataConfig(name="table", root=str(tmp_path / "people.parquet"))).data.shape == given.data.shape[:1] + data.data.shape[1:]


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "the table has 1 row: a generator needs at least 4"),
    ('a,b\n1,"2\n3,4\n', "is not a table pandas can read"),
    ("a,b\n1,x\n2,3\n4,5\n6,7\n", "column 'b' is declared continuous but holds the value 'x'"),
])
def test_bad_tables_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    columns = {"b": "continuous"} if "declared" in message else None
    with pytest.raises(DataError, match=message) as err:
        create(DataConfig(name="table", root=str(path), columns=columns))
    assert "\n" not in str(err.value)


def test_other_mistakes_name_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="table file '.*missing.csv' does not exist"):
        create(DataConfig(name="table", root=str(tmp_path / "missing.csv")))
    with pytest.raises(DataError, match="data.target names 'nope'"):
        create(DataConfig(name="wine", target="nope"))
    with pytest.raises(DataError, match="data.resolution applies to images"):
        create(DataConfig(name="wine", resolution=32))
    with pytest.raises(DataError, match="data.columns applies to tables"):
        create(DataConfig(name="digits", columns={"a": "continuous"}))


def test_the_table_modality_writes_csv_with_provenance_and_a_preview(tmp_path):
    data = create(DataConfig(name="wine"))
    kind = modality.get("table").bind({"table": data.info["table"]})
    out = kind.write(data.data[:20], tmp_path / "rows.csv", metadata={"synthetic": "true"})
    back = pd.read_csv(out)
    assert list(back.columns) == list(data.info["frame"].columns) and len(back) == 20
    assert np.allclose(back["alcohol"], data.info["frame"]["alcohol"][:20])
    assert (back["target"] == data.info["frame"]["target"][:20]).all()
    assert json.loads((tmp_path / "rows.csv.provenance.json").read_text()) == {"synthetic": "true", "rows": 20}
    picture = kind.preview(data.data[:12])
    assert picture.size[0] > 300 and np.asarray(picture).std() > 10  # drawn text, not a blank page
    with pytest.raises(Exception, match="without their table encoding"):
        modality.get("table").rows(data.data[:2])
