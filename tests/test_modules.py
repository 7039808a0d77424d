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
