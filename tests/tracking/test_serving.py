"""A real `mlflow server` and a real `mlflow models serve`, both on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import colour_image, free_port, image_bytes
from PIL import Image
from project import BIN, stage_env

pytestmark = pytest.mark.e2e
EXPERIMENT = "landscape-colorization"


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited early: {process.stdout.read()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} not up after {timeout} s")


def rest(base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory, tiny_data):
    """A training run (lr 0.002, as DVC experiment "via-server") and its evaluate logged to the
    server; returns its run-info file."""
    from conftest import tiny_params

    from colorizer.evaluation.evaluate import evaluate
    from colorizer.training.train import train

    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", server)
    patch.setenv("DVC_EXP_NAME", "via-server")
    try:
        root = tmp_path_factory.mktemp("run")
        params = tiny_params(root, {"lr": 0.002})
        train(params, shards=Path(tiny_data.paths.shards), root=root)
        evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
        yield Path(params.paths.run_info)
    finally:
        patch.undo()


def test_runs_reach_the_tracking_server(server, trained):
    experiment = rest(server, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={EXPERIMENT}")
    found = rest(server, "/api/2.0/mlflow/runs/search",
                 {"experiment_ids": [experiment["experiment"]["experiment_id"]]})["runs"]
    [run] = found
    assert {p["key"]: p["value"] for p in run["data"]["params"]}["lr"] == "0.002"
    assert run["info"]["run_name"] == "via-server" and run["info"]["status"] == "FINISHED"
    assert run["info"]["run_id"] == json.loads(trained.read_text())["run_id"]
    assert "test/accuracy" in {m["key"] for m in run["data"]["metrics"]}  # evaluate's, through the server
    run_id = run["info"]["run_id"]
    history = rest(server, f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=epoch/val_mse")
    assert [m["step"] for m in history["metrics"]] == [1, 2]
    listed = rest(server, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=images")
    assert any(f["path"].startswith("images/samples~epoch+step+2+") for f in listed["files"])


def test_served_model_colorizes_a_grayscale_photo(server, trained, tmp_path):
    run_id = json.loads(trained.read_text())["run_id"]
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        env={**stage_env(), "MLFLOW_TRACKING_URI": server}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/ping", process, timeout=180)
        gray = np.asarray(Image.fromarray(colour_image(4, 60)).convert("L"))[:, :45]
        photo = base64.b64encode(image_bytes(gray, "JPEG")).decode()
        answer = rest(base, "/invocations", {"dataframe_records": [{"image": photo}]})
    finally:
        process.terminate()
        process.wait(timeout=30)
    colorized = Image.open(io.BytesIO(base64.b64decode(answer["predictions"][0]["image"])))
    assert colorized.mode == "RGB" and colorized.size == (45, 60)
