"""Sharing a generator: a model-hub folder with a model card, and ``ganforge push``.

A shared generator is the run's ``generator/`` folder (``config.json`` + ``model.safetensors``,
which ``ganforge.load`` and every command read) plus a ``README.md`` model card with the metadata
model hubs index (YAML front matter: library, tags, licence, data set) and what a person needs:
what it is, how to sample it, the training command and config, the last evaluation, and the
safeguards its outputs carry. :func:`write_hub_folder` lays it out on disk; :func:`push` uploads
it to the Hugging Face Hub (``pip install 'ganforge[hub]'``), from where ``hf://OWNER/REPO``
loads it (:mod:`ganforge.hub`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .core import atomic_write_files, read_files
from .errors import UserError
from .hub import huggingface_hub
from .models.base import GENERATOR_CONFIG, GENERATOR_WEIGHTS
from .rundir import RunDir, generator_folder

#: The Hub's pipeline tags for a generator's kind of output (others get none).
PIPELINE_TAGS = {"image": "unconditional-image-generation"}


def last_evaluation(run: RunDir) -> dict[str, Any]:
    """The last ``eval/...`` figures of a run's ``metrics.jsonl`` (empty when it has none)."""
    found: dict[str, Any] = {}
    for record in run.metrics():
        evaluated = {k[5:]: v for k, v in record.items() if k.startswith("eval/")}
        if evaluated:
            found = {"step": record.get("step"), **evaluated}
    return found


def model_card(network: str, meta: dict[str, Any], config_yaml: str | None, evaluation: dict[str, Any], license: str,
               repo_id: str) -> str:
    """``README.md`` of a shared generator (``network``: its class): YAML front matter for the hub, then the card."""
    modality = meta.get("modality") or "image"
    family = network
    front = {"library_name": "ganforge", "license": license, "tags": ["ganforge", "gan", str(modality), str(family)]}
    if meta.get("data"):
        front["datasets"] = [str(meta["data"])]
    if modality in PIPELINE_TAGS and not meta.get("class_names"):
        front["pipeline_tag"] = PIPELINE_TAGS[modality]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {meta.get('run') or repo_id}", "",
             f"A {family} generator of {modality} samples trained with [ganforge](https://pypi.org/project/ganforge/) "
             f"on `{meta.get('data', 'its data')}` for {meta.get('step', '?')} steps (weights id `{meta.get('weights_id', '?')}`).",
             "", "## Use", "", "```bash", "pip install ganforge",
             f"ganforge sample hf://{repo_id} --n 16 --seed 0 --out samples.png", "```", "", "```python", "import ganforge",
             f'generator = ganforge.load("hf://{repo_id}")', "samples = generator.sample(16, seed=0)", "```", ""]
    if meta.get("class_names"):
        lines += [f"Conditional: `--label` takes one of {', '.join(map(str, meta['class_names']))}.", ""]
    if meta.get("parent"):
        lines += [f"Fine-tuned from `{meta['parent'].get('run')}` (step {meta['parent'].get('step')}).", ""]
    if evaluation:
        step = evaluation.pop("step", None)
        lines += [f"## Evaluation (step {step})", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in evaluation.items()] + [""]
    if config_yaml:
        lines += ["## Training", "", "The run's resolved config (`ganforge train config.yaml` repeats it):", "", "```yaml",
                  config_yaml.strip(), "```", ""]
    lines += ["## Safeguards", "", "Images sampled with ganforge carry its invisible watermark and `synthetic=true` metadata; "
              "`ganforge verify FILE` reads them.", ""]
    return "\n".join(lines)


def write_hub_folder(run: str | Path, out: str | Path, *, license: str = "other", repo_id: str = "OWNER/REPO") -> Path:
    """``out`` laid out as a model repository: the generator's ``config.json`` and ``model.safetensors``, ``README.md``."""
    source = generator_folder(run)
    try:  # both files from one version of the folder, even while training replaces it
        files = read_files(source, (GENERATOR_CONFIG, GENERATOR_WEIGHTS))
    except OSError:
        raise UserError(f"no generator to share at '{run}' (expected {source}/{GENERATOR_CONFIG} and {GENERATOR_WEIGHTS})") from None
    spec = json.loads(files[GENERATOR_CONFIG])
    meta = spec.get("meta", {})
    run_dir = RunDir(run)
    trained = run_dir.config_path.is_file()  # a run directory, not a generator folder alone
    config = run_dir.config_path.read_text() if trained else None
    evaluation = last_evaluation(run_dir) if trained else {}
    files["README.md"] = model_card(str(spec.get("class", "Generator")), meta, config, evaluation, license, repo_id).encode()
    return atomic_write_files(out, files)


def push(run: str | Path, repo_id: str, *, private: bool = False, license: str = "other", token: str | None = None) -> str:
    """Upload the run's generator with its model card to the Hub repository ``repo_id`` (created if needed); its URL."""
    hub = huggingface_hub()
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_hub_folder(run, Path(tmp) / "repo", license=license, repo_id=repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="ganforge push")
        except Exception as err:  # noqa: BLE001 - network, authentication, permissions: one line either way
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"cannot push to '{repo_id}': {reason} (huggingface-cli login, or --local DIR to write it here)") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}")
