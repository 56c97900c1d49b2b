"""Google releases and Hugging Face BERT, loaded and exported, checked against
the NumPy reference. Every checkpoint here is written by the test itself."""

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import TOY_VOCAB, random_inputs
from numpy_bert import encoder_forward, masked_lm_forward, next_sentence_forward

from workbench.checkpoints.load import apply_head_weights, load_pretrained
from workbench.models.heads import BertClassifier, BertPretrainer, BertSpanExtractor

VOCAB = list(dict.fromkeys(TOY_VOCAB))
V, H, L, I, P = len(VOCAB), 64, 2, 96, 32


def google_weights(rng, heads=True):
    w = {
        "bert/embeddings/word_embeddings": rng.normal(0, 0.5, (V, H)),
        "bert/embeddings/position_embeddings": rng.normal(0, 0.5, (P, H)),
        "bert/embeddings/token_type_embeddings": rng.normal(0, 0.5, (2, H)),
        "bert/embeddings/LayerNorm/gamma": 1 + rng.normal(0, 0.1, H),
        "bert/embeddings/LayerNorm/beta": rng.normal(0, 0.1, H),
        "bert/pooler/dense/kernel": rng.normal(0, 0.2, (H, H)),
        "bert/pooler/dense/bias": rng.normal(0, 0.1, H),
    }
    for i in range(L):
        p = f"bert/encoder/layer_{i}/"
        for name in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
            w[p + name + "/kernel"], w[p + name + "/bias"] = rng.normal(0, 0.2, (H, H)), rng.normal(0, 0.1, H)
        w[p + "intermediate/dense/kernel"], w[p + "intermediate/dense/bias"] = (
            rng.normal(0, 0.2, (H, I)),
            rng.normal(0, 0.1, I),
        )
        w[p + "output/dense/kernel"], w[p + "output/dense/bias"] = rng.normal(0, 0.2, (I, H)), rng.normal(0, 0.1, H)
        for ln in ("attention/output/LayerNorm", "output/LayerNorm"):
            w[p + ln + "/gamma"], w[p + ln + "/beta"] = 1 + rng.normal(0, 0.1, H), rng.normal(0, 0.1, H)
    if heads:
        w.update(
            {
                "cls/predictions/transform/dense/kernel": rng.normal(0, 0.2, (H, H)),
                "cls/predictions/transform/dense/bias": rng.normal(0, 0.1, H),
                "cls/predictions/transform/LayerNorm/gamma": 1 + rng.normal(0, 0.1, H),
                "cls/predictions/transform/LayerNorm/beta": rng.normal(0, 0.1, H),
                "cls/predictions/output_bias": rng.normal(0, 0.1, V),
                "cls/seq_relationship/output_weights": rng.normal(0, 0.2, (2, H)),
                "cls/seq_relationship/output_bias": rng.normal(0, 0.1, 2),
                "cls/squad/output_weights": rng.normal(0, 0.2, (2, H)),
                "cls/squad/output_bias": rng.normal(0, 0.1, 2),
            }
        )
    return {k: np.asarray(v, np.float32) for k, v in w.items()}


def config(**overrides):
    values = dict(
        vocab_size=V,
        hidden_size=H,
        num_hidden_layers=L,
        num_attention_heads=2,
        intermediate_size=I,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=P,
        type_vocab_size=2,
        initializer_range=0.02,
    )
    values.update(overrides)
    return values


def write_google_release(directory, weights, bert_config=None, vocab=VOCAB, training_state=True):
    """A release directory written with TF1's saver, as the original code did."""
    os.makedirs(directory, exist_ok=True)
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(v, name=n) for n, v in weights.items()]
        if training_state:
            variables += [
                tf.compat.v1.Variable(
                    np.zeros_like(weights["bert/pooler/dense/bias"]), name="bert/pooler/dense/bias/adam_m"
                ),
                tf.compat.v1.Variable(np.int64(1000), name="global_step"),
            ]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables).save(
                session, os.path.join(directory, "bert_model.ckpt"), write_meta_graph=False
            )
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(bert_config or config(), f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("".join(t + "\n" for t in vocab))
    return str(directory)


def to_hf(weights):
    """Hugging Face names and layouts for Google-named weights (written here, independently)."""
    out = {}
    for name, value in weights.items():
        if name.startswith("cls/squad/"):
            out["qa_outputs." + ("weight" if name.endswith("weights") else "bias")] = value
            continue
        if name == "cls/predictions/output_bias":
            out["cls.predictions.bias"] = value
            continue
        if name.startswith("cls/seq_relationship/"):
            out["cls.seq_relationship." + ("weight" if name.endswith("weights") else "bias")] = value
            continue
        hf = name.replace("bert/encoder/layer_", "bert.encoder.layer.").replace("/", ".")
        if name.endswith("_embeddings"):
            out[hf + ".weight"] = value
        elif name.endswith("/gamma"):
            out[hf[: -len(".gamma")] + ".weight"] = value
        elif name.endswith("/beta"):
            out[hf[: -len(".beta")] + ".bias"] = value
        elif name.endswith("/kernel"):
            out[hf[: -len(".kernel")] + ".weight"] = np.ascontiguousarray(value.T)
        else:
            out[hf] = value
    return out


def write_hf_directory(directory, weights, act="gelu", lowercase=True):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(to_hf(weights), os.path.join(directory, "model.safetensors"))
    values = {k: v for k, v in config(hidden_act=act).items()}
    values.update(model_type="bert", architectures=["BertForPreTraining"], layer_norm_eps=1e-12)
    json.dump(values, open(os.path.join(directory, "config.json"), "w"))
    json.dump({"do_lower_case": lowercase}, open(os.path.join(directory, "tokenizer_config.json"), "w"))
    open(os.path.join(directory, "vocab.txt"), "w").write("".join(t + "\n" for t in VOCAB))
    return str(directory)


def check_against_reference(pretrained, weights, rng, act):
    inputs = random_inputs(rng, vocab_size=V)
    seq, pooled, _ = encoder_forward(weights, L, 2, **inputs, hidden_act=act)
    out = pretrained.encoder(inputs)
    valid = inputs["padding_mask"].astype(bool)
    assert np.abs(np.asarray(out["sequence_output"]) - seq)[valid].max() <= 1e-4
    assert np.abs(np.asarray(out["pooled_output"]) - pooled).max() <= 1e-4
    pretrainer = BertPretrainer(pretrained.encoder)
    assert apply_head_weights(pretrainer, pretrained.head_weights)
    positions = np.array([[1, 2, 3], [0, 4, 5]], "int32")
    heads = pretrainer({**inputs, "mask_positions": positions})
    assert np.abs(np.asarray(heads["mlm_logits"]) - masked_lm_forward(weights, seq, positions, act)).max() <= 1e-4
    assert np.abs(np.asarray(heads["nsp_logits"]) - next_sentence_forward(weights, pooled)).max() <= 1e-4
    squad = BertSpanExtractor(pretrained.encoder)
    assert apply_head_weights(squad, pretrained.head_weights)
    logits = seq @ weights["cls/squad/output_weights"].T + weights["cls/squad/output_bias"]
    spans = squad(inputs)
    assert np.abs(np.asarray(spans["start_logits"]) - logits[..., 0])[valid].max() <= 1e-4
    assert np.abs(np.asarray(spans["end_logits"]) - logits[..., 1])[valid].max() <= 1e-4


def test_google_release_matches_reference(tmp_path, rng, caplog):
    weights = google_weights(rng)
    directory = write_google_release(tmp_path / "uncased_L-2_H-64_A-2", weights)
    with caplog.at_level(logging.WARNING, logger="workbench"):
        pretrained = load_pretrained(directory)
    assert not caplog.records  # adam slots and global_step are training state, not "unused"
    assert pretrained.init.startswith("google:") and pretrained.tokenizer.do_lower_case
    assert pretrained.encoder.activation == "gelu"  # the original's gelu = tanh form
    check_against_reference(pretrained, weights, rng, "gelu")


def test_hugging_face_directory_matches_reference_with_exact_gelu(tmp_path, rng):
    weights = google_weights(rng)
    pretrained = load_pretrained(write_hf_directory(tmp_path / "hf", weights, act="gelu", lowercase=False))
    assert pretrained.encoder.activation == "gelu_exact" and not pretrained.tokenizer.do_lower_case
    check_against_reference(pretrained, weights, rng, "gelu_exact")
    tanh = load_pretrained(write_hf_directory(tmp_path / "hf2", weights, act="gelu_new"))
    assert tanh.encoder.activation == "gelu"


def test_round_trips_are_bit_identical(tmp_path, rng):
    from workbench.checkpoints.export import convert

    weights = google_weights(rng)
    release = write_google_release(tmp_path / "release", weights, training_state=False)
    convert(release, str(tmp_path / "preset"), "keras-preset")
    convert(str(tmp_path / "preset"), str(tmp_path / "back"), "google")
    reader = tf.train.load_checkpoint(str(tmp_path / "back" / "bert_model.ckpt"))
    encoder_names = [n for n in weights if n.startswith("bert/")]
    assert sorted(n for n in reader.get_variable_to_shape_map()) == sorted(encoder_names)  # a preset has no heads
    for name in encoder_names:
        np.testing.assert_array_equal(reader.get_tensor(name), weights[name])
    # Google with heads -> Google keeps the pretraining heads.
    convert(release, str(tmp_path / "back2"), "google")
    reader = tf.train.load_checkpoint(str(tmp_path / "back2" / "bert_model.ckpt"))
    np.testing.assert_array_equal(
        reader.get_tensor("cls/predictions/output_bias"), weights["cls/predictions/output_bias"]
    )
    # HF -> keras preset: identical tensors, and keras-hub itself loads the preset.
    import keras_hub

    import workbench  # noqa: F401

    hf = load_pretrained(write_hf_directory(tmp_path / "hf", weights))
    convert(str(tmp_path / "hf"), str(tmp_path / "hf_preset"), "keras-preset")
    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "hf_preset"))
    for a, b in zip(backbone.get_weights(), hf.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert backbone.activation == "gelu_exact"


def test_classifier_head_loads_only_when_it_fits(tmp_path, rng):
    weights = google_weights(rng, heads=False)
    weights["output_weights"], weights["output_bias"] = (
        rng.normal(size=(3, H)).astype("f"),
        rng.normal(size=3).astype("f"),
    )
    pretrained = load_pretrained(write_google_release(tmp_path / "mnli_finetuned", weights))
    three = BertClassifier(pretrained.encoder, num_classes=3)
    assert apply_head_weights(three, pretrained.head_weights)
    np.testing.assert_array_equal(three.output_dense.kernel.numpy(), weights["output_weights"].T)
    assert not apply_head_weights(BertClassifier(pretrained.encoder, num_classes=2), pretrained.head_weights)


def test_bad_checkpoints_get_clear_errors(tmp_path, rng, caplog):
    weights = google_weights(rng, heads=False)
    bad_config = write_google_release(tmp_path / "a", weights, bert_config=config(intermediate_size=128))
    with pytest.raises(
        ValueError, match=r"bert/encoder/layer_0/intermediate/dense/kernel has shape \(64, 96\).*\(64, 128\)"
    ):
        load_pretrained(bad_config)
    partial = {k: v for k, v in weights.items() if "layer_1/output" not in k}
    with pytest.raises(ValueError, match=r"missing variables: .*bert/encoder/layer_1/output/dense/kernel"):
        load_pretrained(write_google_release(tmp_path / "b", partial))
    extra = dict(weights, **{"bert/encoder/layer_0/extra/kernel": np.zeros((2, 2), "f")})
    with caplog.at_level(logging.WARNING, logger="workbench"):
        load_pretrained(write_google_release(tmp_path / "c", extra))
    assert "bert/encoder/layer_0/extra/kernel" in caplog.text
    with pytest.raises(ValueError, match=rf"vocab.txt has {V - 1} tokens but .* {V} rows"):
        load_pretrained(write_google_release(tmp_path / "d", weights, vocab=VOCAB[:-1]))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "weights.bin").write_text("?")
    with pytest.raises(
        ValueError, match="Accepted layouts: an original Google BERT release.*Hugging Face.*keras-hub preset"
    ):
        load_pretrained(str(tmp_path / "e"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="workbench"):
        load_pretrained(write_google_release(tmp_path / "cased_L-12_H-768_A-12", weights), lowercase=True)
    assert "cased" in caplog.text and "lowercase=True" in caplog.text


def test_savedmodel_export_serves_the_task_model(tmp_path, rng):
    from workbench.checkpoints.export import convert
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder

    model = BertClassifier(BertEncoder.from_config_object(BertConfig(**config())), num_classes=3)
    model.save(tmp_path / "task_model.keras")
    convert(str(tmp_path), str(tmp_path / "served"), "savedmodel")
    served = tf.saved_model.load(str(tmp_path / "served"))
    inputs = random_inputs(rng, vocab_size=V)
    np.testing.assert_allclose(served.serve(inputs).numpy(), np.asarray(model(inputs)), atol=1e-5)
    # Exported with plain ops: a serving binary without the XLA JIT can run it.
    saved = (tmp_path / "served" / "saved_model.pb").read_bytes()
    assert b"_XlaMustCompile" not in saved
    # Exported again into the same place: an earlier SavedModel is replaced whole.
    before = sorted(os.listdir(tmp_path / "served"))
    convert(str(tmp_path), str(tmp_path / "served"), "savedmodel")
    assert sorted(os.listdir(tmp_path / "served")) == before


def test_extract_features_last_layers(tmp_path, rng):
    from workbench.cli import main
    from workbench.explore.hidden_states import extract_features

    weights = google_weights(rng, heads=False)
    release = write_google_release(tmp_path / "r", weights)
    pretrained = load_pretrained(release)
    results = extract_features(
        pretrained.encoder, pretrained.tokenizer, ["the cat sat"], ["on the mat"], layers=(-1, 0, 1, -2, -3)
    )
    # The original's indices: 0 the first Transformer layer, 1 (of 2) the last; -3 the embedding output.
    layer = results[0]["layers"]
    np.testing.assert_array_equal(layer[1], layer[-1])
    np.testing.assert_array_equal(layer[0], layer[-2])
    assert not np.allclose(layer[-3], layer[-2])
    assert results[0]["tokens"] == ["[CLS]", "the", "cat", "sat", "[SEP]", "on", "the", "mat", "[SEP]"]
    inputs = {
        "token_ids": np.array([[2, 5, 6, 7, 3, 8, 5, 9, 3]], "int32"),
        "segment_ids": np.array([[0] * 5 + [1] * 4], "int32"),
        "padding_mask": np.ones((1, 9), "int32"),
    }
    seq, _, _ = encoder_forward(weights, L, 2, **inputs)
    assert np.abs(results[0]["layers"][-1] - seq[0]).max() <= 1e-4
    text = tmp_path / "in.txt"
    text.write_text("the cat sat ||| on the mat\nhello world\n")
    assert (
        main(
            [
                "extract-features",
                "--model",
                release,
                "--input",
                str(text),
                "--output",
                str(tmp_path / "f.jsonl"),
                "--layers=-1,-2",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["features"][1]["token"] == "hello"
    assert [layer["index"] for layer in lines[0]["features"][0]["layers"]] == [-1, -2]
    assert len(lines[0]["features"][0]["layers"][0]["values"]) == H
    # Layers that do not exist, and a bad --layers, are named (the default -1..-4 on this 2-layer model).
    with pytest.raises(ValueError, match=r"layers \[-4\] do not exist in a 2-layer model: use -2 to 1 .* or -3 for"):
        extract_features(pretrained.encoder, pretrained.tokenizer, ["the cat"], None, layers=(-1, -4))
    args = ["extract-features", "--model", release, "--input", str(text), "--output", str(tmp_path / "g.jsonl")]
    assert main(args) == 2 and not (tmp_path / "g.jsonl").exists()
    assert main([*args, "--layers=-1,x"]) == 2


def write_model_garden_checkpoint(directory, weights, heads=2, prefix="encoder"):
    """A TF Model Garden (TF2, object-based) BERT checkpoint with the release's
    file names: weighted layers tracked as `layer_with_weights-N`, per-head kernels.
    `tf.Module` (public) tracks attributes set with `setattr` as the Model Garden's layers are tracked."""
    AutoTrackable = tf.Module

    def node(**variables):
        obj = AutoTrackable()
        for name, value in variables.items():
            setattr(obj, name, value if isinstance(value, AutoTrackable) else tf.Variable(value))
        return obj

    d = H // heads
    encoder = AutoTrackable()
    tables = ("word_embeddings", "position_embeddings", "token_type_embeddings")
    for i, table in enumerate(tables):
        setattr(encoder, f"layer_with_weights-{i}", node(embeddings=weights[f"bert/embeddings/{table}"]))
    setattr(
        encoder,
        "layer_with_weights-3",
        node(gamma=weights["bert/embeddings/LayerNorm/gamma"], beta=weights["bert/embeddings/LayerNorm/beta"]),
    )
    for i in range(L):
        g = lambda name, i=i: weights[f"bert/encoder/layer_{i}/{name}"]  # noqa: E731
        attention = node(
            **{
                f"_{short}_dense": node(
                    kernel=g(f"attention/self/{short}/kernel").reshape(H, heads, d),
                    bias=g(f"attention/self/{short}/bias").reshape(heads, d),
                )
                for short in ("query", "key", "value")
            },
            _output_dense=node(
                kernel=g("attention/output/dense/kernel").reshape(heads, d, H), bias=g("attention/output/dense/bias")
            ),
        )
        setattr(
            encoder,
            f"layer_with_weights-{4 + i}",
            node(
                _attention_layer=attention,
                _attention_layer_norm=node(
                    gamma=g("attention/output/LayerNorm/gamma"), beta=g("attention/output/LayerNorm/beta")
                ),
                _intermediate_dense=node(kernel=g("intermediate/dense/kernel"), bias=g("intermediate/dense/bias")),
                _output_dense=node(kernel=g("output/dense/kernel"), bias=g("output/dense/bias")),
                _output_layer_norm=node(gamma=g("output/LayerNorm/gamma"), beta=g("output/LayerNorm/beta")),
            ),
        )
    setattr(
        encoder,
        f"layer_with_weights-{4 + L}",
        node(kernel=weights["bert/pooler/dense/kernel"], bias=weights["bert/pooler/dense/bias"]),
    )
    os.makedirs(directory, exist_ok=True)
    saved = tf.train.Checkpoint(**{prefix: encoder}).write(os.path.join(directory, "bert_model.ckpt"))
    assert saved.endswith("bert_model.ckpt")
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(config(num_attention_heads=heads), f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("".join(t + "\n" for t in VOCAB))
    return str(directory)


def test_model_garden_tf2_checkpoint_matches_reference(tmp_path, rng, caplog):
    weights = google_weights(rng, heads=False)
    directory = write_model_garden_checkpoint(tmp_path / "uncased_L-2_H-64_A-2", weights)
    names = tf.train.load_checkpoint(os.path.join(directory, "bert_model.ckpt")).get_variable_to_shape_map()
    assert "encoder/layer_with_weights-4/_attention_layer/_query_dense/kernel/.ATTRIBUTES/VARIABLE_VALUE" in names
    with caplog.at_level(logging.WARNING, logger="workbench"):
        pretrained = load_pretrained(directory)
    assert not caplog.records  # save_counter and the object graph are not model weights
    inputs = random_inputs(rng, vocab_size=V)
    seq, pooled, _ = encoder_forward(weights, L, 2, **inputs, hidden_act="gelu")
    out = pretrained.encoder(inputs)
    assert np.abs(np.asarray(out["sequence_output"]) - seq)[inputs["padding_mask"].astype(bool)].max() <= 1e-4
    assert np.abs(np.asarray(out["pooled_output"]) - pooled).max() <= 1e-4
    # Same tensors as the original layout, and the heads count comes from the kernels.
    google = load_pretrained(write_google_release(tmp_path / "google", weights, training_state=False))
    for a, b in zip(pretrained.encoder.get_weights(), google.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(config(num_attention_heads=4), f)
    with pytest.raises(ValueError, match="num_attention_heads=4 but the checkpoint's attention kernels have 2 heads"):
        load_pretrained(directory)


def serve_fake_hub(files, repo):
    """A minimal Hugging Face Hub on 127.0.0.1 serving `files` ({name: bytes})
    as model repo `repo`: the repo-info, tree and resolve endpoints
    huggingface_hub's snapshot_download uses. Returns (server, requested paths)."""
    import hashlib
    import http.server
    import threading
    import urllib.parse

    commit = hashlib.sha1(b"".join(files.values())).hexdigest()
    requested = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body=b"", headers=()):
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = urllib.parse.urlparse(self.path).path
            requested.append((self.command, path))
            api = f"/api/models/{repo}/"
            if path.startswith(api + "revision/"):
                info = {"id": repo, "sha": commit, "siblings": [{"rfilename": n} for n in files]}
                return self._send(200, json.dumps(info).encode(), [("Content-Type", "application/json")])
            if path.startswith(api + "tree/"):
                tree = [
                    {"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for n, b in files.items()
                ]
                return self._send(200, json.dumps(tree).encode(), [("Content-Type", "application/json")])
            prefix = f"/{repo}/resolve/{commit}/"
            if path.startswith(prefix) and path[len(prefix) :] in files:
                body = files[path[len(prefix) :]]
                return self._send(
                    200, body, [("X-Repo-Commit", commit), ("ETag", f'"{hashlib.sha1(body).hexdigest()}"')]
                )
            return self._send(404, b"{}")

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requested


def test_hf_handle_downloads_what_it_needs_from_the_hub(tmp_path, rng, monkeypatch):
    import huggingface_hub.constants

    weights = google_weights(rng)
    local = write_hf_directory(tmp_path / "hf", weights, act="gelu")
    files = {n: open(os.path.join(local, n), "rb").read() for n in os.listdir(local)}
    files["pytorch_model.bin"] = b"not needed when safetensors are there"
    server, requested = serve_fake_hub(files, "someone/tiny-bert")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    try:
        pretrained = load_pretrained("hf://someone/tiny-bert")
    finally:
        server.shutdown()
    assert pretrained.encoder.activation == "gelu_exact"
    check_against_reference(pretrained, weights, rng, "gelu_exact")
    fetched = {p.rsplit("/", 1)[-1] for method, p in requested if method == "GET" and "/resolve/" in p}
    assert "model.safetensors" in fetched and "config.json" in fetched and "pytorch_model.bin" not in fetched
    with pytest.raises(ValueError, match="expected hf://<owner>/<name>"):
        load_pretrained("hf://a/b/c")
