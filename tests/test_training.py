"""The trainer: run directory, exact resume, divergence guard, interruption."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.errors import DivergenceError, TrainingError, UserError
from ganforge.losses import LOSSES
from ganforge.training import recipes
from ganforge.training.checkpoint import load_checkpoint
from tiny_configs import TINY_DIGITS


def _train(out, **overrides):
    return ganforge.train("dcgan-digits", out=out, overrides={**TINY_DIGITS, **overrides})


def test_run_directory_layout(tmp_path):
    run = _train(tmp_path / "run", **{"train.steps": 40, "train.tensorboard": True})
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.yaml", "checkpoints", "generator", "samples", "metrics.jsonl", "tensorboard"} <= names
    assert (run.dir / "checkpoints" / "latest.pt").is_file()
    assert sorted(p.name for p in (run.dir / "samples").iterdir()) == ["step-000020.png", "step-000040.png"]
    records = run.metrics()
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert {"d_loss", "g_loss", "kimg", "img_per_s"} <= set(records[0])
    assert records[-1]["kimg"] == pytest.approx(40 * 32 / 1000)
    assert list((run.dir / "tensorboard").iterdir())
    saved = ganforge.load_config(str(run.dir / "config.yaml"))
    assert saved.train.steps == 40 and saved.model.options["base_channels"] == 8
    # the checkpoint is plain data: loads with weights_only=True
    state = torch.load(run.dir / "checkpoints" / "latest.pt", weights_only=True)
    assert state["step"] == 40 and set(state["recipe"]["networks"]) == {"generator", "discriminator"}


#: Stateful extras that must survive a resume too: ADA's probability, lazy regularizer
#: cadence, random streams of augmentations and penalties.
RESUME_VARIANTS = {
    "plain": {},
    "ada-r1-gp": {"augment.name": "ada", "augment.speed_kimg": 0.5, "loss.regularizers": {"r1": {"weight": 1, "every": 4}, "gp": 1}},
    "diffaugment-bcr": {"augment.name": "diffaugment", "loss.regularizers": {"bcr-real": 1}},
}


@pytest.mark.parametrize("variant", list(RESUME_VARIANTS))
def test_resume_is_bit_identical(tmp_path, variant):
    """30 steps + resume to 60 == 60 steps in one go (weights, EMA, optimizer, data order)."""
    extra = {"train.checkpoint_every": 1000, "train.sample_every": 1000, **RESUME_VARIANTS[variant]}
    one_go = _train(tmp_path / "one", **{"train.steps": 60, **extra})
    _train(tmp_path / "split", **{"train.steps": 30, **extra})
    first = load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 60})
    assert resumed.step == 60
    a = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    for net in ("generator", "discriminator"):
        for key, tensor in a["recipe"]["networks"][net].items():
            assert torch.equal(tensor, b["recipe"]["networks"][net][key]), f"{net}.{key} differs"
    for key, tensor in a["ema"].items():
        assert torch.equal(tensor, b["ema"][key]), f"ema.{key} differs"
    ga = load_file(str(one_go.dir / "generator" / "model.safetensors"))
    gb = load_file(str(resumed.dir / "generator" / "model.safetensors"))
    assert ga.keys() == gb.keys() and all(torch.equal(ga[k], gb[k]) for k in ga)
    # the resumed log continues where the first part stopped
    assert [r["step"] for r in resumed.metrics()] == [10, 20, 30, 40, 50, 60]
    # and the weights did move: this is not a trivially frozen model
    assert not torch.equal(first["ema"]["net.0.weight"], b["ema"]["net.0.weight"])


def test_resume_refuses_trajectory_changes(tmp_path):
    _train(tmp_path / "r", **{"train.steps": 10})
    with pytest.raises(UserError, match="cannot change train.batch_size"):
        ganforge.train(resume=tmp_path / "r", overrides={"train.batch_size": 8})
    with pytest.raises(UserError, match="not a run directory"):
        ganforge.train(resume=tmp_path / "nothing")


def test_existing_run_directory_is_not_overwritten(tmp_path):
    _train(tmp_path / "r", **{"train.steps": 10})
    with pytest.raises(UserError, match="already exists"):
        _train(tmp_path / "r", **{"train.steps": 10})


def test_divergence_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = recipes.GANRecipe.train_step

    def poisoned(self, batches, step):
        out = original(self, batches, step)
        if step >= 25:  # from the 26th step on the discriminator loss is NaN
            out["d_loss"] = out["d_loss"] * float("nan")
        return out

    monkeypatch.setattr(recipes.GANRecipe, "train_step", poisoned)
    with pytest.raises(DivergenceError) as info:
        _train(tmp_path / "r", **{"train.steps": 60})
    message = str(info.value)
    assert "diverged by step 30" in message and "d_loss" in message and "step 20" in message
    assert "\n" not in message
    state = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert state["step"] == 20
    assert all(torch.isfinite(t).all() for t in state["recipe"]["networks"]["generator"].values())


def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    original = recipes.GANRecipe.train_step

    def poisoned(self, batches, step):
        out = original(self, batches, step)
        if step == 5:
            with torch.no_grad():
                next(self.generator.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(recipes.GANRecipe, "train_step", poisoned)
    with pytest.raises(DivergenceError, match="no checkpoint was written yet"):
        _train(tmp_path / "r", **{"train.steps": 40})
    assert not (tmp_path / "r" / "checkpoints" / "latest.pt").exists()


def _interrupt_at(monkeypatch, at):
    """Make training raise KeyboardInterrupt (Ctrl-C) before step ``at``; returns the undo."""
    original = recipes.GANRecipe.train_step

    def interrupted(self, batches, step):
        if step == at:
            raise KeyboardInterrupt
        return original(self, batches, step)

    monkeypatch.setattr(recipes.GANRecipe, "train_step", interrupted)
    return lambda: monkeypatch.setattr(recipes.GANRecipe, "train_step", original)


def test_interrupt_saves_a_resumable_checkpoint(tmp_path, monkeypatch):
    undo = _interrupt_at(monkeypatch, 13)
    with pytest.raises(TrainingError, match=r"interrupted at step 13; .*--resume"):
        _train(tmp_path / "r", **{"train.steps": 30})
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")["step"] == 13
    undo()
    run = ganforge.train(resume=tmp_path / "r")
    assert run.step == 30


def test_n_critic_uses_fresh_batches(tmp_path):
    run = _train(tmp_path / "r", **{"train.steps": 10, "train.n_critic": 3})
    state = load_checkpoint(run.dir / "checkpoints" / "latest.pt")
    assert state["loader"]["epoch"] * 1797 // 32 * 32 + state["loader"]["position"] >= 10 * 3 * 32 - 32
    assert run.metrics()[-1]["kimg"] == pytest.approx(10 * 3 * 32 / 1000)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run = _train(tmp_path / "r", **{"train.steps": 10})
    (run.dir / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot load checkpoint"):
        ganforge.train(resume=run.dir, overrides={"train.steps": 20})


def test_checkpoint_cannot_execute_code(tmp_path):
    """A pickle that would run code on load is refused by weights_only loading."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"step": Evil()}, protocol=2))
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_checkpoint(path)


def test_metrics_jsonl_is_valid_json(tmp_path):
    run = _train(tmp_path / "r", **{"train.steps": 20})
    for line in (run.dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_every_loss_and_optimizer_trains(tmp_path, loss, optimizer):
    """Each loss/optimizer pair runs, keeps finite values and moves the generator."""
    overrides = {
        "loss.name": loss, "optim.name": optimizer, "optim.g_lr": 1e-4, "optim.d_lr": 4e-4,
        "train.steps": 20, "train.batch_size": 64, "train.progress": False, "model.hidden_dim": 32,
    }
    trainer = ganforge.Trainer(ganforge.load_config("gan-ring8", overrides), tmp_path / "r")
    opts = trainer.recipe.optimizers
    assert type(opts["generator"]).__name__.lower() == optimizer
    assert opts["generator"].param_groups[0]["lr"] == 1e-4 and opts["discriminator"].param_groups[0]["lr"] == 4e-4
    before = [p.detach().clone() for p in trainer.recipe.generator.parameters()]
    run = trainer.fit()
    losses = [r for r in run.metrics() if "d_loss" in r]  # the preset also logs eval/modes lines
    assert losses and all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in losses)
    after = list(trainer.recipe.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_lr_schedule_decays_to_zero_and_resumes_exactly(tmp_path, monkeypatch, schedule):
    """A decaying learning rate is a function of the step: an interrupted run resumes onto the same weights."""
    extra = {"train.steps": 40, "train.checkpoint_every": 1000, "train.sample_every": 1000,
             "optim.lr_schedule": schedule, "optim.decay_start": 0.25}
    one_go = _train(tmp_path / "one", **extra)
    state = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    for name in ("generator", "discriminator"):
        group = state["recipe"]["optimizers"][name]["param_groups"][0]
        # the last update (after 39 steps) ran at 1/30 (linear) or ~0.003 (cosine) of the base rate
        assert group["initial_lr"] == pytest.approx(2e-4)
        assert 0 < group["lr"] < 0.04 * group["initial_lr"]
    undo = _interrupt_at(monkeypatch, 17)
    with pytest.raises(TrainingError, match="interrupted at step 17"):
        _train(tmp_path / "split", **extra)
    undo()
    resumed = ganforge.train(resume=tmp_path / "split")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    for key, tensor in state["recipe"]["networks"]["generator"].items():
        assert torch.equal(tensor, b["recipe"]["networks"]["generator"][key]), key
    # and the schedule changed the trajectory: a constant rate ends elsewhere
    constant = _train(tmp_path / "constant", **{**extra, "optim.lr_schedule": "constant"})
    c = load_checkpoint(constant.dir / "checkpoints" / "latest.pt")
    assert not torch.equal(c["ema"]["net.0.weight"], state["ema"]["net.0.weight"])


def test_lr_factor_shapes():
    from ganforge.training.schedule import lr_factor

    assert [lr_factor("linear", s, 100, 0.5) for s in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    assert lr_factor("cosine", 75, 100, 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 60, 100, 0.0) == pytest.approx(0.5 * (1 + math.cos(0.6 * math.pi)))
    assert lr_factor("constant", 99, 100) == 1.0
    with pytest.raises(UserError, match="did you mean 'linear'"):
        ganforge.load_config("dcgan-digits", {"optim.lr_schedule": "linera"})


def test_fp16_needs_a_gpu(tmp_path):
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        _train(tmp_path / "r", **{"train.steps": 2, "train.precision": "fp16", "train.device": "cpu"})
