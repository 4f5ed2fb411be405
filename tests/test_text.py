"""Text: data sets and their errors, the text GAN recipes learning, sampling and scoring sentences.

The corpus is generated here (a small grammar of captions), so the tests need no shared data;
runs use a fixed seed, step count and thread count.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.errors import DataError
from ganforge.metrics.bleu import bleu, self_bleu
from ganforge.models.base import seeded_latents
from ganforge.text import EOS, PAD, UNK, Vocabulary, detokenize, tokenize
from tiny_configs import THREADS

SUBJECTS = ["a man", "a woman", "two dogs", "the cat", "a small boy", "an old car", "three birds", "a girl"]
VERBS = ["sits on", "stands near", "walks past", "looks at", "is parked by", "runs along"]
OBJECTS = ["a bench", "the table", "a red bus", "the street", "a large window", "a green field", "the river"]
ENDINGS = ["", " in the rain", " at night", " with a friend"]


def caption(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(ENDINGS)}."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A folder with train.txt (800 captions) and test.txt (200) of one small grammar."""
    folder = tmp_path_factory.mktemp("captions")
    rng = random.Random(0)
    for split, n in (("train", 800), ("test", 200)):
        (folder / f"{split}.txt").write_text("\n".join(caption(rng) for _ in range(n)) + "\n")
    return folder


SMALL = {"model.embed_dim": 16, "model.hidden_dim": 32, "model.d_embed_dim": 16, "model.d_filters": 16,
         "train.batch_size": 32, "train.seed": 0, "train.threads": THREADS, "train.progress": False, "train.log_every": 10,
         "eval.every": 0}


def train(preset: str, root: Path, out: Path, steps: int, **overrides) -> Path:
    settings = {"data.name": "text-lines", "data.root": str(root), **SMALL, "train.steps": steps,
                "train.sample_every": steps, "train.checkpoint_every": steps, **overrides}
    return ganforge.train(preset, out=out, overrides=settings).dir


# ---------------------------------------------------------------------------------------------- data


def test_text_lines_share_the_training_vocabulary_across_splits(corpus):
    train = create_data(DataConfig(name="text-lines", root=str(corpus)))
    test = create_data(DataConfig(name="text-lines", root=str(corpus), split="test"))
    assert train.modality == test.modality == "text" and train.info["vocab"] == test.info["vocab"]
    assert train.data.dtype == torch.long and train.data.shape == (800, train.info["max_length"] + 1)
    vocab = Vocabulary(train.info["vocab"])
    assert vocab.decode(test.data) == test.info["sentences"]  # every test word is a training word here
    first = test.data[0]
    assert (first == EOS).sum() == 1 and (first[(first == EOS).nonzero()[0, 0] + 1 :] == PAD).all()


def test_tokens_vocabulary_and_lines_round_trip():
    words = tokenize("a bicycle replica with a clock as the front wheel.")
    assert words[-2:] == ["wheel", "."] and detokenize(words) == "a bicycle replica with a clock as the front wheel."
    vocab = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], max_size=6)
    assert vocab.words[4:] == ["a", "b"]  # by count, capped: 'c' reads <unk>
    ids = vocab.encode([["a", "c", "zebra"]], 4)
    assert ids.tolist() == [[4, UNK, UNK, EOS, PAD]]


def test_max_length_leaves_out_longer_lines(tmp_path, capsys):
    (tmp_path / "lines.txt").write_text("one two three\na b\nx y z w v u\n")
    data = create_data(DataConfig(name="text-lines", root=str(tmp_path / "lines.txt"), max_length=3))
    assert len(data) == 2 and data.data.shape[1] == 4
    assert "1 of 3 train sentences are longer than 3 words" in capsys.readouterr().err
    assert len(data.info["sentences"]) == 3  # BLEU's references keep every line


@pytest.mark.parametrize("content, message", [
    (b"", "holds no sentences"),
    (b"\n  \n\n", "holds no sentences"),
    (b"only one caption here\n", "holds one sentence"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("café au lait\nun thé\n".encode("latin-1"), "not UTF-8"),
])
def test_bad_text_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        create_data(DataConfig(name="text-lines", root=str(path)))
    assert "\n" not in str(err.value)


def test_missing_text_data_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        create_data(DataConfig(name="text-lines", root=str(tmp_path / "nothing.txt")))
    with pytest.raises(DataError, match="ganforge does not download them"):
        create_data(DataConfig(name="coco-captions", root=str(tmp_path)))
    with pytest.raises(DataError, match="not 'test'"):
        (tmp_path / "one.txt").write_text("a b\nc d\n")
        create_data(DataConfig(name="text-lines", root=str(tmp_path / "one.txt"), split="test"))


def test_the_cli_reports_bad_text_in_one_line(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    result = subprocess.run([sys.executable, "-m", "ganforge", "train", "mle-coco", "--out", str(tmp_path / "run"),
                             "--set", "data.name=text-lines", f"data.root={tmp_path / 'empty.txt'}"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "holds no sentences" in lines[0]


# ---------------------------------------------------------------------------------------------- learning


def bleu2(generator, test_sentences, n=200, seed=1) -> float:
    from ganforge import modality

    words = modality.of(generator).sentences(generator.sample(n, seed=seed))
    return bleu(words, test_sentences, orders=(2,))[2]


def test_a_short_relgan_run_raises_bleu2_over_its_untrained_generator(corpus, tmp_path):
    steps, pretrain = 150, 120
    run = train("relgan-coco", corpus, tmp_path / "relgan", steps, **{"recipe_options.pretrain_steps": pretrain})
    test = create_data(DataConfig(name="text-lines", root=str(corpus), split="test")).info["sentences"]
    trained = ganforge.load(run)
    # the same network at step 0: built from the same seed before any update
    torch.manual_seed(0)
    untrained = ganforge.models.create("textgan", trained.output_shape, 0, vocab_size=trained.vocab_size,
                                       embed_dim=16, hidden_dim=32)[0]
    untrained.meta = trained.meta
    before, after = bleu2(untrained, test), bleu2(trained, test)
    assert before < 0.5 and after > before + 0.3, (before, after)
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    adversarial = [r for r in logs if "beta" in r]
    assert adversarial and adversarial[-1]["beta"] > adversarial[0]["beta"] >= 1  # the temperature was annealed
    nll = [r["nll"] for r in logs if "nll" in r]
    assert nll[-1] < 0.5 * nll[0]  # the MLE pre-training learned the grammar


def test_seqgan_rewards_are_probabilities_and_stop_at_the_end_of_a_sentence(corpus, tmp_path):
    from ganforge.training.recipes import RECIPES
    from ganforge.validate import load_config

    run = train("seqgan-coco", corpus, tmp_path / "seqgan", 12,
                **{"recipe_options.pretrain_steps": 8, "recipe_options.d_pretrain_steps": 4, "recipe_options.rollouts": 2})
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in r for r in logs)
    config = load_config(run / "config.yaml")
    recipe = RECIPES.get("seqgan")(config, create_data(config.data), torch.device("cpu"))
    words = recipe.sample(16)
    q = recipe.rewards(words)
    assert q.shape == words.shape and (q >= 0).all() and (q <= 1).all()
    assert (q[words == PAD] == 0).all() and (q[words != PAD] > 0).all()


# ---------------------------------------------------------------------------------------------- outputs and metrics


@pytest.fixture(scope="module")
def mle_run(corpus, tmp_path_factory) -> Path:
    evaluation = {"eval.every": 40, "eval.n": 100, "eval.metrics": ["bleu", "nll", "self-bleu", "copy"]}
    return train("mle-coco", corpus, tmp_path_factory.mktemp("mle") / "run", 80, **evaluation)


def test_evaluation_during_training_scores_sentences(mle_run):
    records = [json.loads(line) for line in (mle_run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "eval/bleu4" in r]
    assert [r["step"] for r in scored] == [40, 80]
    assert scored[-1]["eval/nll_test"] < scored[0]["eval/nll_test"]  # still learning the grammar
    assert all(0 < r["eval/bleu2"] <= 1 and 0 <= r["eval/copy_rate"] <= 1 for r in scored)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True)


def test_sample_writes_one_sentence_a_line_deterministically_with_provenance(mle_run, tmp_path):
    for name in ("a.txt", "b.txt"):
        assert cli("sample", str(mle_run), "--n", "50", "--seed", "3", "--out", str(tmp_path / name)).returncode == 0
    a = (tmp_path / "a.txt").read_bytes()
    assert a == (tmp_path / "b.txt").read_bytes()
    lines = a.decode().splitlines()
    assert len(lines) == 50 and all(line.strip() for line in lines)
    provenance = json.loads((tmp_path / "a.txt.provenance.json").read_text())
    assert provenance["synthetic"] == "true" and provenance["seed"] == "3" and provenance["sentences"] == 50
    assert provenance["generator"] == ganforge.load(mle_run).meta["weights_id"]
    assert cli("sample", str(mle_run), "--n", "4", "--out", str(tmp_path / "c.json")).returncode == 0
    assert len(json.loads((tmp_path / "c.json").read_text())["sentences"]) == 4


def test_temperature_trades_diversity_for_likelihood(mle_run, tmp_path):
    sentences = {}
    for t in ("0.3", "1.5"):
        assert cli("sample", str(mle_run), "--n", "200", "--temperature", t, "--out", str(tmp_path / f"{t}.txt")).returncode == 0
        sentences[t] = [tokenize(line) for line in (tmp_path / f"{t}.txt").read_text().splitlines()]
    assert self_bleu(sentences["0.3"], (4,))[4] > self_bleu(sentences["1.5"], (4,))[4] + 0.1
    assert json.loads((tmp_path / "0.3.txt.provenance.json").read_text())["temperature"] == "0.3"


def test_temperature_is_refused_for_generators_without_one(tiny_dcgan_run, tmp_path):
    result = cli("sample", str(tiny_dcgan_run.dir), "--n", "2", "--temperature", "0.5", "--out", str(tmp_path / "x.png"))
    assert result.returncode != 0 and "--temperature applies to" in result.stderr


def test_eval_scores_a_text_run_with_bleu_self_bleu_nll_and_copy(mle_run, tmp_path):
    out = tmp_path / "scores.json"
    result = cli("eval", str(mle_run), "--metrics", "bleu,self-bleu,nll,copy", "--n", "300", "--json", str(out))
    assert result.returncode == 0, result.stderr
    scores = json.loads(out.read_text())
    assert 1 >= scores["bleu2"] >= scores["bleu3"] >= scores["bleu4"] >= scores["bleu5"] > 0
    assert 0 < scores["self_bleu4"] <= 1 and 0 <= scores["copy_rate"] <= 1
    vocab = len(ganforge.load(mle_run).meta["vocab"])
    assert 0 <= scores["nll_unknown"] < 0.05  # the test captions use training words
    assert 0 < scores["nll_test"] < 0.5 * torch.log(torch.tensor(float(vocab)))  # far below a uniform guess


def test_latents_determine_the_sentence(mle_run):
    g = ganforge.load(mle_run)
    z = seeded_latents(8, g.latent_dim, seed=5)
    a, b = g.sample(8, seed=5), ganforge.models.base.generate(g, z, batch_size=3)
    assert torch.equal(a, b)  # the sentence is a function of its latent, whatever the batch


def test_completing_a_sentence_from_its_own_prefix_and_latent_gives_it_back():
    """Rollouts read the prefix in one packed pass and drop rows at <eos>: neither may shift a row's words."""
    from ganforge.models.textgan import LanguageModel, TextCNN

    torch.manual_seed(0)
    g = LanguageModel(12, 40, embed_dim=8, hidden_dim=16).eval()
    with torch.no_grad():
        g.out.bias[EOS] += 2.5  # sentences of many lengths end at different steps of the batch
        z = torch.randn(256, 12)
        words = g.sample_words(z)
        lengths = (words != PAD).sum(1)
        assert lengths.min() < 4 and lengths.max() == 12
        keep = torch.randint(0, 13, (256,))
        assert torch.equal(g.complete(words, keep, z), words)
        other = g.complete(words, keep, torch.randn(256, 12))  # new latents: the kept prefix stays, the rest is redrawn
        kept = torch.arange(12)[None, :] < keep.clamp_max(lengths)[:, None]
        assert torch.equal(other[kept], words[kept]) and not torch.equal(other, words)
        d = TextCNN(12, 40, filters=4).eval()
        one_hot = torch.nn.functional.one_hot(words, 40).float()
        assert torch.equal(d(words), d(one_hot))  # ids are looked up: the same numbers as one-hots @ embedding


def test_serve_returns_the_sentences_the_cli_writes(mle_run, tmp_path):
    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    with TestClient(create_app(mle_run), base_url="http://localhost") as client:
        info = client.get("/api/info").json()
        body = client.post("/api/generate", json={"n": 5, "seed": 2, "format": "images"}).json()
        grid = client.post("/api/generate", json={"n": 5, "seed": 2, "format": "grid"})
    assert info["media_type"] == "text/plain" and body["media_type"] == "text/plain"
    served = [base64.b64decode(b).decode("utf-8").strip() for b in body["images"]]
    from ganforge import modality

    generator = ganforge.load(mle_run)
    lines = modality.of(generator).lines
    # sample i is seed i's, as `ganforge sample --n 1 --seed i` writes it
    assert served == [lines(generator.sample(1, seed=seed))[0] for seed in body["seeds"]] and any(served)
    assert cli("sample", str(mle_run), "--n", "1", "--seed", str(body["seeds"][3]), "--out", str(tmp_path / "s.txt")).returncode == 0
    assert (tmp_path / "s.txt").read_text().strip() == served[3]
    assert grid.headers["content-type"] == "image/png"  # a batch of sentences is shown as their picture


@pytest.mark.slow
def test_mle_coco_at_its_budget_reaches_the_texygen_bleu_bar(shared_data, tmp_path):
    """Issue 18's acceptance 1 (about 6 min on 2 cores): BLEU-2 >= 0.80 and BLEU-4 >= 0.45 on the COCO test
    captions, here by maximum likelihood sampled at temperature 0.5 (Self-BLEU, NLL and copy rate beside it)."""
    root = shared_data / "text"
    if not (root / "coco_test.txt").is_file():
        pytest.skip(f"COCO captions missing at {root}")
    run = ganforge.train("mle-coco", out=tmp_path / "run", overrides={"data.root": str(root), "train.progress": False,
                                                                       "train.threads": THREADS})
    generator = ganforge.load(run.dir)
    generator.temperature = 0.5
    test = create_data(DataConfig(name="coco-captions", root=str(root), split="test")).info["sentences"]
    from ganforge import modality

    sentences = modality.of(generator).sentences(generator.sample(1000, seed=10_000))
    scores = bleu(sentences, test, (2, 4))
    assert scores[2] >= 0.80 and scores[4] >= 0.45, scores
