"""The HTTP API against its own OpenAPI schema: a property test with schemathesis, in-process over ASGI.

Schemathesis draws requests from ``/openapi.json``: schema-valid ones, which must get a 2xx (or a
400 when the model cannot honour them: an unknown class name, a label on an unconditional
model, too many values), and schema-invalid ones, which must get a 4xx. Every response is
checked against the schema (status code, content type, JSON body) and here also: no 5xx, and
no body larger than the server's limits allow. The image models and an audio model (WAV files)
are drawn against. Fixed seed (``derandomize``), a bounded number of cases per operation and
mode; the counts are printed (``cases``, ``failures``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402  (hypothesis comes with schemathesis)
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from ganforge.serve import create_app  # noqa: E402

try:
    from builtins import BaseExceptionGroup  # how schemathesis reports several failed checks
except ImportError:  # Python 3.10: the backport schemathesis depends on
    from exceptiongroup import BaseExceptionGroup

MAX_EXAMPLES = 60  # per operation and mode (the parameterless GETs have one case)
HOST = {"host": "localhost"}  # the app answers loopback names only
# 400: a schema-valid request the model cannot honour (the schema cannot know the class names)
CONFIG = {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}}}


def largest_response(info: dict[str, Any]) -> int:
    """A bound on any response body: every allowed value as base64 (a PNG pixel per channel byte, a 16-bit WAV
    sample two bytes), with room for the files' and JSON's framing."""
    limits = info["limits"]
    samples = max(limits["max_n"], limits["max_steps"])
    if info["media_type"] == "audio/wav":
        values = min(samples * info["output_shape"][-1], limits["max_values"])
        return 2 * 2 * values + samples * (4 << 10) + (64 << 10)  # + a RIFF INFO chunk of provenance per clip
    channels, height, width = info["output_shape"]
    pixels = samples * height * width * limits["max_scale"] ** 2
    pixels = min(pixels, limits.get("max_pixels", pixels))
    return 2 * pixels * channels + (64 << 10)


RUNS = {"conditional": "tiny_cdcgan_run", "unconditional": "tiny_dcgan_run", "audio": "tiny_audio_run"}


@pytest.mark.parametrize("model", list(RUNS))
def test_the_api_keeps_to_its_schema(model, request, capsys):
    run = request.getfixturevalue(RUNS[model])
    app = create_app(run.dir, batch_wait_ms=0)  # one request at a time: nothing to wait for
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG),
                                            headers=HOST)
    bound = largest_response(app.state.service.info())
    statuses: Counter[tuple[str, str, int]] = Counter()
    failures: dict[str, str] = {}  # first line of each distinct failure -> the case that found it
    largest = failed = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        # negative cases: POSTs with a JSON body (any bytes are a valid body of /api/verify: it has no invalid form)
        negative = operation.method.upper() == "POST" and operation.path != "/api/verify"
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else [])
        for mode in modes:

            @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:
                nonlocal largest, failed
                response = case.call(headers=HOST, timeout=60)  # a hang is a ReadTimeout, not a stuck test
                statuses[(operation.label, mode.value, response.status_code)] += 1
                largest = max(largest, len(response.content))
                problems = [f"{len(response.content)} bytes, over the bound"] if len(response.content) > bound else []
                try:
                    case.validate_response(response, headers=HOST)  # no 5xx, schema conformance, ...
                except (Exception, BaseExceptionGroup) as err:  # a group of failed checks: count, go on, report at the end
                    problems += [f"{type(e).__name__}: {str(e).strip().splitlines()[0]}" for e in getattr(err, "exceptions", [err])]
                failed += bool(problems)
                for problem in problems:
                    failures.setdefault(f"{operation.label} -> {response.status_code}: {problem}", f"{case.body!r}"[:300])

            check()

    with capsys.disabled():
        print(f"\nschemathesis ({model} model): {sum(statuses.values())} cases, {failed} failures; largest response "
              f"{largest} bytes (bound {bound}); " + ", ".join(f"{op} {mode} {status}: {k}"
                                                              for (op, mode, status), k in sorted(statuses.items())))
    assert not failures, "\n".join(f"{what}\n    found by {body}" for what, body in failures.items())
    assert not any(status >= 500 for _, _, status in statuses)
    positive = {status for (op, mode, status) in statuses if op.startswith("POST") and mode == "positive"}
    assert 200 in positive, "no schema-valid request was served: the test exercised nothing"
