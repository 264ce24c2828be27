"""Bad input to `python -m train ...` ends in one `error:` line that says what to change, exit 2."""

import shutil
import sys

import pytest

from train.__main__ import cli


def run_cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["python -m train", *map(str, argv)])
    code = cli()
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_checkpoint):
    d = tmp_path_factory.mktemp("bad")
    truncated = d / "truncated"
    shutil.copytree(tiny_checkpoint, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[:len(data) // 3])
    (d / "binary.jsonl").write_bytes(bytes(range(256)) * 4)
    (d / "latin1.jsonl").write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    (d / "empty.jsonl").write_text("")
    good = d / "good.jsonl"
    good.write_text('{"prompt": "copy : the cat", "response": "the cat", "answer": "the cat"}\n')
    return {"dir": d, "truncated": truncated, "binary": d / "binary.jsonl", "empty": d / "empty.jsonl",
            "good": good, "ckpt": tiny_checkpoint}


CASES = {
    "truncated weights": (lambda f: ["eval", "--checkpoint", f["truncated"], "--data", f["good"]],
                          "could not be read"),
    "binary data": (lambda f: ["eval", "--checkpoint", f["ckpt"], "--data", f["binary"]], "binary file"),
    "not UTF-8": (lambda f: ["eval", "--checkpoint", f["ckpt"], "--data", f["dir"] / "latin1.jsonl"],
                  "not UTF-8 text"),
    "empty data": (lambda f: ["sft", "--base", f["ckpt"], "--data", f["empty"], "--out", f["dir"] / "o1",
                              "--steps", "1"], "no records"),
    "missing data": (lambda f: ["eval", "--checkpoint", f["ckpt"], "--data", f["dir"] / "nope.jsonl"],
                     "no such file"),
    "no checkpoint": (lambda f: ["eval", "--checkpoint", f["dir"] / "nothing", "--data", f["good"]],
                      "is missing (and it is not a hub repo id"),
    "hub id offline": (lambda f: ["eval", "--checkpoint", "nobody/nothing", "--data", f["good"]],
                       "not in the local Hugging Face cache"),
    "negative steps": (lambda f: ["sft", "--base", f["ckpt"], "--generate", "--steps", "-3", "--out", f["dir"] / "o2"],
                       "--steps must be at least 1"),
    "resume an empty folder": (lambda f: ["sft", "--base", f["ckpt"], "--generate", "--steps", "2", "--resume",
                                          "--out", f["dir"] / "o3"], "no complete checkpoint"),
    "no data at all": (lambda f: ["sft", "--base", f["ckpt"], "--out", f["dir"] / "o4", "--steps", "1"],
                       "--data FILE ... or --generate"),
    "bad pretraining text": (lambda f: ["pretrain", "--tokenizer", f["ckpt"], "--data", f["binary"],
                                        "--out", f["dir"] / "o5", "--steps", "1"], "binary file"),
    "unknown family": (lambda f: ["sft", "--base", f["ckpt"], "--generate", "poetry", "--steps", "1",
                                  "--out", f["dir"] / "o6"], "unknown task families"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_error_line(case, files, monkeypatch, capsys):
    argv, expected = CASES[case]
    code, err = run_cli(monkeypatch, capsys, *argv(files))
    assert code == 2, err
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], err
    assert not any("Traceback" in line for line in err)
