"""The top-level help, answered without importing torch or Lightning (they take seconds to load)."""

USAGE = """\
usage: python -m lightning_app {fit,validate,test,predict,lr_find,interpret,export,demo} [options]

The 'Deep Learning with PyTorch' lesson as a Lightning application.

subcommands:
  fit        train (then test the best checkpoint); --ckpt_path last resumes exactly,
             --model.init_from FILE starts a new run from saved weights
  validate   evaluate on the validation split      (--ckpt_path FILE|best|last)
  test       evaluate on the test split            (--ckpt_path FILE|best|last)
  predict    class probabilities for the test split or --data.predict_path FILE_OR_FOLDER
  lr_find    a learning-rate range test: the plot, the suggested rate and the fit command using it
  interpret  test, then the highest-loss images, most-confused pairs, per-class scores (--ckpt_path best)
  export     an ONNX model with its class names and preprocessing (--ckpt_path best; pip extra [export])
  demo       a web page on 127.0.0.1: draw a digit or drop a photo, watch the model answer (--ckpt_path best)

common options:
  -c, --config NAME|FILE   a shipped config (mnist_mlp, fashion_classifier, catdog_transfer,
                           catdog_finetune) or a YAML file
  --model NAME             MLP (default), Classifier, TransferModel
  --data NAME              MNISTDataModule (default), FashionMNISTDataModule, CatDogDataModule
  --model.X, --data.X, --trainer.X   any setting; see `python -m lightning_app fit --help`
  --print_config           show every setting of a command (callbacks included) and exit
  --tensorboard_views.every_s 30, --metrics_json null, ...   tune or switch off the app's callbacks

Runs, checkpoints and TensorBoard logs go to logs/; watch them with
  tensorboard --logdir logs --host 127.0.0.1
"""
