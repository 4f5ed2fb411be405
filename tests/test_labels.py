"""One label parser for the CLI (--label) and the API (label): names, ASCII digits, bounded messages."""

import json

import pytest

from ganforge.errors import UserError
from ganforge.sampling import parse_label

NAMES = ["T-shirt", "Trouser", "Sneaker"]


def test_names_and_indices():
    assert parse_label(None, NAMES, 3) is None
    assert parse_label(2, NAMES, 3) == 2
    assert parse_label("Sneaker", NAMES, 3) == 2
    assert parse_label(" 1 ", NAMES, 3) == 1
    assert parse_label("-1", NAMES, 3) == -1  # the range is the caller's check
    assert parse_label("3", ["9", "3"], 2) == 1  # names win: folder names may be digits


@pytest.mark.parametrize("label", ["²", "١", "cat", "", "1.5"])
def test_what_is_not_a_label_is_a_one_line_error(label):
    with pytest.raises(UserError, match="unknown label") as err:
        parse_label(label, NAMES, 3)
    assert "\n" not in str(err.value)


def test_bad_input_is_quoted_short():
    with pytest.raises(UserError, match=r"^label 9{20}\.\.\. is out of range: this generator has classes 0\.\.2$"):
        parse_label("9" * 5000, NAMES, 3)
    with pytest.raises(UserError) as err:
        parse_label("x" * 10_000, NAMES, 3)
    assert len(str(err.value)) < 200


def test_out_of_range_labels_are_named_once():
    from ganforge import models

    g, _ = models.create("mlp", (2,), 10, hidden_dim=8)
    with pytest.raises(UserError, match=r"labels must be in 0\.\.9, got 12$"):
        g.sample(8, labels=12)


@pytest.mark.parametrize("truncation", [1e-6, 0.0, -1.0, float("nan"), float("inf")])
def test_truncation_out_of_range_is_an_error_not_a_hang(truncation):
    from ganforge import models

    g, _ = models.create("mlp", (2,), 0, hidden_dim=8)
    with pytest.raises(UserError, match="truncation must be a number >= 0.05"):
        g.sample(4, truncation=truncation)


@pytest.fixture(scope="module")
def api(tiny_cdcgan_run):
    """The HTTP API on the session's tiny conditional digits DCGAN (classes '0'..'9')."""
    pytest.importorskip("fastapi")
    import warnings

    from ganforge.serve import create_app

    with warnings.catch_warnings():  # starlette prefers httpx2 but works with httpx
        warnings.filterwarnings("ignore", message=".*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(tiny_cdcgan_run.dir), base_url="http://localhost") as client:
        yield client


@pytest.mark.parametrize("path", ["/api/generate", "/api/interpolate"])
@pytest.mark.parametrize("label", ["²", "١", "٣", "1.5", "x" * 5000, "\ud800", "\x1b[31m"])
def test_the_api_answers_a_bad_label_with_a_short_400(api, path, label):
    """Defect 1 of issue 16: a superscript or Arabic-Indic digit passed isdigit(), then int() raised: a 500.

    A lone surrogate was a 500 too (the error quoting it could not be encoded as UTF-8); a
    quoted label is escaped, so it cannot drive a terminal either.
    """
    body = {"label": label, "n": 2} if path == "/api/generate" else {"label": label}
    response = api.post(path, content=json.dumps(body), headers={"content-type": "application/json"})  # ASCII JSON
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith("unknown label '") and "(classes: 0, 1, 2" in detail
    assert len(detail) < 200 and detail.isprintable()
