"""The baseline networks STSTNet, OFF-ApexNet (MEB's version) and HTNet (tsfmicro/model/networks):
parameter counts against the arithmetic of baselines.md, shapes, HTNet's two quirks and their fix,
their recipes, and that they train through the engine's fold loop while TSFmicro's keys hold."""
import dataclasses

import numpy as np
import pytest
import torch

import test_engine_loop as loop  # its random PreparedData and folds (module import: not re-collected)
from tsfmicro.engine import RunConfig, load_run, train
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import folds as fold_tasks
from tsfmicro.engine import loso, runs
from tsfmicro.engine.recipes import get_recipe
from tsfmicro.model import MODELS, count_flops, count_parameters, model_from_config
from tsfmicro.model.networks import htnet as ht

NETWORKS = ("ststnet", "off_apexnet", "htnet")
FLOW = (3, 28, 28)  # the flow input: u, v, strain at 28 x 28


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def linear(n_in, n_out):
    return n_in * n_out + n_out


def ststnet_parameters(classes):
    """baselines.md Sec. 1: three streams conv(3 -> c, 3x3) + BatchNorm(c), c = 3, 5, 8; Linear(400 -> classes)."""
    return sum(conv(3, c, 3) + 2 * c for c in (3, 5, 8)) + linear(16 * 5 * 5, classes)


def off_apexnet_parameters(classes):
    """baselines.md Sec. 2 (MEB): conv(2 -> 6), conv(6 -> 16), Linear(784 -> 1024), Linear(1024 -> classes)."""
    return conv(2, 6, 3) + conv(6, 16, 3) + linear(784, 1024) + linear(1024, classes)


def htnet_parameters(classes, dim=256, heads=3, depths=(2, 2, 10), positions=(1, 1, 1)):
    """baselines.md Sec. 3: patch 147 -> dim; block(d) = 4 d inner + 8 d^2 + 10 d, inner = (d // heads) heads;
    a positional value per window position per level; aggregates conv 3x3 d -> 2d + norm; head norm + Linear."""
    total = linear(147, dim)
    for level, depth in enumerate(depths):
        d, h = dim * 2 ** level, heads * 2 ** level
        inner = d // h * h
        total += depth * (4 * d * inner + 8 * d * d + 10 * d) + positions[level]
        if level < len(depths) - 1:
            total += conv(d, 2 * d, 3) + 2 * (2 * d)
    d = dim * 2 ** (len(depths) - 1)
    return total + 2 * d + linear(d, classes)


def test_parameter_counts_follow_the_arithmetic_of_baselines_md():
    assert ststnet_parameters(3) == 1_683 and off_apexnet_parameters(3) == 807_909
    assert htnet_parameters(3) == 139_582_982  # baselines.md: "Total 139,582,982 (~139.6 M)"
    for classes in (3, 5):
        for preset in ("paper", "tiny"):
            assert count_parameters(model_from_config({"arch": "ststnet", "preset": preset}, classes)) == \
                ststnet_parameters(classes)
            assert count_parameters(model_from_config({"arch": "off_apexnet", "preset": preset}, classes)) == \
                off_apexnet_parameters(classes)
        # the authors' HTNet on the meta device: counted without allocating 139.6 M parameters
        with torch.device("meta"):
            paper = model_from_config({"arch": "htnet", "preset": "paper"}, classes)
            fixed = model_from_config({"arch": "htnet", "preset": "paper", "quirks": "fixed"}, classes)
        assert count_parameters(paper) == htnet_parameters(classes)
        # the fix adds only the positional values of its 2 x 2 windows (4 at the first two levels)
        assert count_parameters(fixed) == htnet_parameters(classes, positions=(4, 4, 1))
        tiny = model_from_config({"arch": "htnet", "preset": "tiny"}, classes)
        assert count_parameters(tiny) == htnet_parameters(classes, dim=32, depths=(2, 2, 2)) < 1_000_000


@pytest.mark.parametrize("arch", NETWORKS)
def test_each_network_keeps_the_model_contract(arch):
    torch.manual_seed(0)
    model = model_from_config({"arch": arch, "preset": "tiny"}, 5)
    assert model.inputs == ("flow",) and model.image_size == 28
    assert isinstance(model.classifier, torch.nn.Linear) and model.classifier.out_features == 5
    maps = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: maps.__setitem__(name, o))
             for name, layer in model.feature_layers().items()]
    flow = torch.randn(4, *FLOW)
    logits = model(flow)
    assert logits.shape == (4, 5)
    assert maps and all(m.ndim == 4 and m.shape[0] == 4 and m.shape[2] > 1 for m in maps.values())  # (B, C, h, w)
    for hook in hooks:
        hook.remove()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # every parameter is used
    assert count_flops(model) > 0


def test_ststnet_and_off_apexnet_shapes_are_the_authors():
    ststnet = model_from_config({"arch": "ststnet", "preset": "paper"}, 3)
    assert ststnet.features(torch.randn(2, *FLOW)).shape == (2, 16, 10, 10)  # 28 -> 30 (padding 2) -> 10
    off = model_from_config({"arch": "off_apexnet", "preset": "paper"}, 3).eval()
    flow = torch.randn(2, *FLOW)
    assert off.features(flow[:, :2]).shape == (2, 16, 7, 7)
    changed_strain = flow.clone()
    changed_strain[:, 2] = torch.randn(2, 28, 28)
    assert torch.equal(off(flow), off(changed_strain))  # MEB's version reads u and v only


def test_htnet_crops_are_the_authors_transposed_ones_and_the_fix_transposes_them_back():
    # baselines.md Sec. 3: with the fallback points the crops are rows 2-16 x cols 4-18, rows 14-28 x
    # cols 3-17, rows 3-17 x cols 14-28, rows 13-27 x cols 14-28 (points 0, 1, 3, 4)
    authors = ht.crop_corners("authors")
    assert authors == [(2, 4), (14, 3), (3, 14), (13, 14)]
    assert ht.crop_corners("fixed") == [(c, r) for r, c in authors]  # rows from y, columns from x
    # pixel (r, c) holds r * 28 + c: the assembled image says where each crop came from
    image = torch.arange(28 * 28, dtype=torch.float32).view(1, 1, 28, 28)
    for quirks in ht.QUIRKS:
        assembled = ht.assemble_crops(image, quirks)[0, 0]
        for (top, left), (row, col) in zip(ht.crop_corners(quirks), ((0, 0), (0, 14), (14, 0), (14, 14))):
            assert assembled[row, col] == top * 28 + left
            assert assembled[row + 13, col + 13] == (top + 13) * 28 + left + 13
    # the fixed crops sit on the face as MTCNN's points are: the left eye's crop is left of the right eye's
    (eye_left, eye_right, mouth_left, _) = ht.crop_corners("fixed")
    assert eye_left[1] < eye_right[1] and eye_left[0] < mouth_left[0]


def tokens_changed(level: torch.nn.Module, dim: int) -> set[tuple[int, int]]:
    """The tokens of a level's (1, dim, 4, 4) output that change when only token (0, 0) of its input does."""
    torch.manual_seed(1)
    x = torch.randn(1, dim, 4, 4)
    moved = x.clone()
    moved[:, :, 0, 0] += torch.randn(dim)  # not a constant: the channel norm would remove it
    with torch.no_grad():
        difference = (level(moved) - level(x)).abs().amax(dim=1)[0]
    return {(int(r), int(c)) for r, c in torch.nonzero(difference > 1e-6)}


def test_htnet_attention_windows_hold_one_token_unless_fixed():
    authors = model_from_config({"arch": "htnet", "preset": "tiny"}, 3)
    fixed = model_from_config({"arch": "htnet", "preset": "tiny", "quirks": "fixed"}, 3)
    assert authors.config.window_sides() == [1, 1, 1] and fixed.config.window_sides() == [2, 2, 1]
    # the authors': no token ever sees another inside a level; fixed: a facial crop's 2 x 2 tokens do
    assert tokens_changed(authors.levels[0], 32) == {(0, 0)}
    assert tokens_changed(fixed.levels[0], 32) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_htnet_quirks_and_fix_differ_only_where_documented():
    torch.manual_seed(0)
    authors = model_from_config({"arch": "htnet", "preset": "tiny"}, 3)
    torch.manual_seed(0)
    fixed = model_from_config({"arch": "htnet", "preset": "tiny", "quirks": "fixed"}, 3)
    a, f = authors.state_dict(), fixed.state_dict()
    assert a.keys() == f.keys()
    differing = {name for name in a if a[name].shape != f[name].shape}
    assert differing == {"levels.0.position", "levels.1.position"}  # one value per window position
    # With the windows set back to one token (one positional value each) and the authors' weights,
    # the fixed network computes the authors' transformer.
    for level in fixed.levels:
        level.window = 1
        level.position = torch.nn.Parameter(torch.zeros(1))
        for block in level.blocks:
            block.attention.window = 1
    fixed.load_state_dict(a)
    flow = torch.randn(3, *FLOW)
    with torch.no_grad():
        assembled = ht.assemble_crops(flow, "authors")
        assert torch.equal(authors(flow), authors.classify(assembled))
        # the same assembled image in: the same logits (nothing else differs)
        torch.testing.assert_close(fixed.classify(assembled), authors.classify(assembled))
        assert not torch.allclose(fixed(flow), authors(flow))  # the crops still differ


def test_the_networks_recipes_are_their_authors():
    def values(recipe):
        return (recipe.optimizer, recipe.learning_rate, recipe.weight_decay, recipe.batch_size, recipe.epochs,
                recipe.sampling)

    assert values(get_recipe("paper", "megc2019", "3class", arch="ststnet")) == \
        ("adam", 5e-5, 1e-4, 256, 500, "in_order")  # the paper and main.m (MATLAB's defaults for the rest)
    assert values(get_recipe("authors_code", "megc2019", "3class", arch="ststnet")) == \
        ("adam", 5e-5, 0.0, 256, 800, "in_order")  # the PyTorch port, no shuffling
    assert values(get_recipe("authors_code", "casme2", "5class", arch="off_apexnet")) == \
        ("adam", 1e-4, 1e-3, 32, 3000, "shuffle")  # MEB's
    htnet = get_recipe("authors_code", "megc2019", "3class", arch="htnet")
    assert values(htnet) == ("adam", 5e-5, 0.0, 256, 800, "in_order")
    # no schedule and no augmentation, with or without an epochs override
    for recipe in (htnet, get_recipe("authors_code", "samm", "3class", arch="htnet", epochs=3, batch_size=8)):
        assert (recipe.lr_gamma, recipe.decay_epochs, recipe.flip_probability, recipe.rotation_degrees,
                recipe.crop_padding) == (1.0, 0, 0.0, 0.0, 0)
    assert get_recipe("authors_code", "samm", "3class", arch="htnet", epochs=3, batch_size=8).epochs == 3
    # the optimiser enters the key for these, never for TSFmicro's recipes
    assert htnet.as_dict()["optimizer"] == "adam" and htnet.as_dict()["sampling"] == "in_order"
    for name in ("paper", "authors_code"):
        assert "optimizer" not in get_recipe(name, "casme2", "5class").as_dict()
    # a recipe name the network's sources do not give is refused, naming the ones it has
    for arch in ("off_apexnet", "htnet"):
        with pytest.raises(ValueError, match=f"network {arch} has no recipe 'paper'.*choose one of authors_code"):
            get_recipe("paper", "casme2", "5class", arch=arch)
    with pytest.raises(ValueError, match="unknown sampling 'random'"):
        get_recipe("authors_code", "casme2", "5class", arch="htnet", sampling="random")


def test_a_network_and_its_options_enter_the_run_key_while_tsfmicros_keys_hold(tmp_path, monkeypatch):
    import tsfmicro.data

    monkeypatch.setattr(tsfmicro.data, "prepare", lambda *args, **kwargs: loop.random_prepared())
    base = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")

    def request(**changes):
        return runs.resolve_request(dataclasses.replace(base, **changes), progress=False)

    plain = request()
    assert "optimizer" not in plain.identity["recipe"] and "quirks" not in plain.identity
    htnet = request(arch="htnet", recipe="authors_code")
    assert htnet.recipe.optimizer == "adam" and htnet.identity["arch"] == "htnet" and "quirks" not in htnet.identity
    fixed = request(arch="htnet", recipe="authors_code", quirks="fixed")
    assert fixed.identity["quirks"] == "fixed" and fixed.key != htnet.key
    assert htnet.path.name.startswith("casme2_5class_htnet_tiny_authors_code_")
    assert runs.config_options(fixed.config) == {"arch": "htnet", "quirks": "fixed"}
    named = request(arch="htnet", recipe="authors_code", quirks="authors")  # HTNet's own default, named
    assert named.key == htnet.key and runs.config_options(named.config) == {"arch": "htnet"}
    # an option another network does not take is refused in the one check
    with pytest.raises(ValueError, match="network ststnet takes no option quirks"):
        runs.validate(dataclasses.replace(base, arch="ststnet", quirks="fixed"))
    with pytest.raises(ValueError, match="network tsfmicro takes no option quirks"):
        runs.validate(dataclasses.replace(base, quirks="fixed"))
    with pytest.raises(ValueError, match="network htnet has no recipe 'paper'.*choose one of authors_code"):
        runs.validate(dataclasses.replace(base, arch="htnet"))  # before any work: RunConfig's recipe is paper
    with pytest.raises(ValueError, match="quirks 'none'.*authors, fixed"):
        runs.validate(dataclasses.replace(base, arch="htnet", quirks="none"))


class FlowData(loso.DeviceData):
    """The data of test_engine_loop plus a ``flow`` input (random (3, 28, 28) maps per clip)."""

    INPUTS = (*loso.PAIR, "flow")

    def __init__(self, data, device, frame_reselection=False):
        super().__init__(data, device, frame_reselection)
        self.flow = torch.randn(len(self.labels), *FLOW, generator=torch.Generator().manual_seed(3))
        self.read: list[tuple[bool, list[int]]] = []  # (train, rows) of every batch read

    def inputs(self, index, image_size, train=False, names=loso.PAIR):
        assert names == ("flow",)
        self.read.append((train, index.tolist()))
        return (self.flow[index],)


@pytest.mark.parametrize("arch,recipe", [("ststnet", "authors_code"), ("off_apexnet", "authors_code"),
                                         ("htnet", "authors_code")])
def test_each_network_trains_in_the_fold_loop_with_its_recipe(arch, recipe, monkeypatch, one_torch_thread):
    made = []
    for name, optimizer in list(loso.OPTIMIZERS.items()):
        monkeypatch.setitem(loso.OPTIMIZERS, name,
                            lambda *a, _o=optimizer, _n=name, **k: made.append(_n) or _o(*a, **k))
    prepared = loop.random_prepared(subjects=2, clips=6)
    config = runs.RunConfig(dataset="casme2", root=".", task="3class", preset="tiny", arch=arch, recipe=recipe)
    data = FlowData(prepared, torch.device("cpu"))
    trainer = loso.FoldTrainer(data=data, build_model=lambda: model_from_config(config, 3),
                               recipe=get_recipe(recipe, "casme2", "3class", arch=arch, epochs=2, batch_size=4),
                               image_size=28, seed=0)
    fold = loop.subject_folds(prepared)[0]
    outcome, model = trainer.run(0, fold, None, lambda state: None, ckpt.CheckpointPolicy(5, 60.0), False)
    assert made == ["adam"]  # Adam, not TSFmicro's AdamW
    assert outcome.probabilities.shape == (2, 6, 3) and np.isfinite(outcome.probabilities).all()
    train_batches = [rows for train, rows in data.read if train]
    expected = np.asarray(fold.train_index).tolist()
    if trainer.recipe.sampling == "in_order":  # every epoch in the table's order, in batches of 4
        assert train_batches == [expected[:4], expected[4:]] * 2
    else:  # MEB's shuffled loader: the same clips, another order
        assert sorted(sum(train_batches[:2], [])) == expected and sum(train_batches[:2], []) != expected


def test_a_baseline_trains_through_the_engine_and_its_own_recipe_is_no_variant(
        synthetic_casme2_root, engine_cache_dir, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setattr(loso, "DeviceData", FlowData)  # the flow maps: random here (tsfmicro.data.flow builds them)
    monkeypatch.setattr(fold_tasks, "_DEVICE_DATA", {})
    config = RunConfig(dataset="casme2", root=synthetic_casme2_root, task="5class", preset="tiny", epochs=2,
                       batch_size=4, seeds=(0,), device="cpu", out=str(tmp_path), cache_dir=engine_cache_dir,
                       arch="ststnet", recipe="authors_code")
    run = train(config, progress=False)
    assert run.path.name.startswith("casme2_5class_ststnet_tiny_authors_code_")
    recipe = run.config["resolved"]["recipe"]
    assert (recipe["optimizer"], recipe["sampling"], recipe["learning_rate"], recipe["epochs"]) == \
        ("adam", "in_order", 5e-5, 2)
    # the network's own unshuffled epochs are its recipe, not a variant of the parameters' run
    assert run.options == {"arch": "ststnet"}
    assert set(run.metrics["protocols"]) == {"fixed", "oracle"}
    subject = run.predictions["subject"].iloc[0]
    assert type(load_run(run.path).fold_model(subject)).__name__ == "STSTNet"
    shuffled = dataclasses.replace(config, sampling="shuffle")  # set against its recipe: a variant
    assert runs.config_options(shuffled) == {"arch": "ststnet", "sampling": "shuffle"}


def test_every_baseline_is_registered_with_the_flow_input():
    assert {"ststnet", "off_apexnet", "htnet"} <= set(MODELS)
    assert MODELS["htnet"].options == ("quirks",) and MODELS["ststnet"].options == ()
    assert set(MODELS["ststnet"].recipes) == {"paper", "authors_code"}
    assert set(MODELS["htnet"].recipes) == set(MODELS["off_apexnet"].recipes) == {"authors_code"}
    assert not MODELS["tsfmicro"].recipes  # TSFmicro's recipes are tsfmicro.engine.recipes' own
