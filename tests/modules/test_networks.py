"""The lesson's networks: shapes, log-probabilities, plain hyperparameters."""

import torch

from modules import MLP, Classifier


def test_mlp_is_the_lessons_784_128_64_10():
    linears = [m for m in MLP().net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 64), (64, 10)]


def test_classifier_is_784_256_128_64_10_with_dropout():
    net = Classifier().net
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 128), (128, 64), (64, 10)]
    assert [m.p for m in net if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2, 0.2]


def test_outputs_are_log_probabilities():
    for model in (MLP(), Classifier()):
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(5, 1, 28, 28))
        assert out.shape == (5, 10)
        assert torch.all(out <= 0)
        assert torch.allclose(out.exp().sum(dim=1), torch.ones(5), atol=1e-5)


def test_hyperparameters_are_plain_values():
    hp = dict(Classifier(lr=0.01, class_names=list("abcdefghij")).hparams)
    assert hp["lr"] == 0.01 and hp["dropout"] == 0.2 and hp["class_names"][0] == "a"
    assert all(isinstance(v, (int, float, str, list, type(None))) for v in hp.values())


def test_the_optimizer_is_adam_or_the_lessons_plain_sgd():
    import pytest

    from modules import ModelError
    from modules.classification import make_optimizer

    params = list(MLP().parameters())
    sgd = make_optimizer("sgd", params, 0.003)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0 and sgd.defaults["lr"] == 0.003
    assert isinstance(make_optimizer("adam", params, 0.003), torch.optim.Adam)
    assert MLP(optimizer="sgd").hparams.optimizer == "sgd"
    with pytest.raises(ModelError, match="optimizer must be one of adam, sgd, got 'rmsprop'"):
        MLP(optimizer="rmsprop")
