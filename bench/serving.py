"""The served model under load: `mlflow models serve` answering concurrent clients.

Logs the default network (params.yaml, random weights: speed does not depend on them) as the
pipeline's MLflow pyfunc model to a scratch store, serves it with `mlflow models serve
--env-manager local` on 127.0.0.1, and sends it, from 1, 4 and 8 concurrent clients, requests
of one photo each: real 150 px photos (Validation Data) and a real photo upscaled to 12 MP
(4000 x 3000 JPEG), with one bad request in every four (not base64, not an image, no image
column, more pixels than the server allows). Records per case the p50 and p95 latency of the
good requests and the peak memory of the server (PSS of all its processes, sampled every 50 ms),
and checks that every good request was answered with a photo of its size, every bad one with a
4xx, and that the server still answers /ping after all of them.

    python bench/serving.py [--data DIR]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BIN, machine, photo_folder, save_results

CLIENTS = (1, 4, 8)
REQUESTS_PER_CLIENT = {"150px": 12, "12mp": 2}
BAD_EVERY = 4  # one request in this many is a bad one
TIMEOUT_S = 600  # the clients'
# The server's, as README's serve command sets it: 8 clients' 12 MP photos queue past MLflow's default 60 s.
SERVER_TIMEOUT_S = 600


def log_default_model(root: Path) -> str:
    """The default network as the pipeline logs it (Tracker.log_model); returns the run id."""
    from inference import default_model
    from PIL import Image

    from colorizer.core.config import load_params
    from colorizer.tracking.tracker import Tracker

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    model = root / "model.keras"
    default_model(model)
    example = io.BytesIO()
    Image.new("L", (32, 32), 128).save(example, format="PNG")
    tracker = Tracker(params.mlflow, root)
    tracker.start(params)
    tracker.log_model(model, example.getvalue(), None)
    tracker.finish()
    return tracker.run_id


def payloads(data: Path) -> dict[str, list[bytes]]:
    from PIL import Image

    sources = sorted((data / "Validation Data").rglob("*.jpg"))[:24]
    big = io.BytesIO()
    Image.open(sources[0]).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, format="JPEG", quality=92)
    return {"150px": [p.read_bytes() for p in sources], "12mp": [big.getvalue()]}


def bad_requests(big_photo: bytes) -> list[dict]:
    image = base64.b64encode(big_photo).decode()
    return [
        {"dataframe_records": [{"image": "not base64 at all!"}]},
        {"dataframe_records": [{"image": base64.b64encode(b"plain text, not an image").decode()}]},
        {"dataframe_records": [{"photo": image[:100]}]},
        {"dataframe_records": [{"image": image}] * 2},  # 24 MP: over the server's 16 MP per request
    ]


def post(url: str, body: dict) -> tuple[int, float, dict | None]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = json.loads(response.read())
            return response.status, time.perf_counter() - started, answer
    except urllib.error.HTTPError as err:
        return err.code, time.perf_counter() - started, None


def client(url: str, photos: list[bytes], bad: list[dict], count: int, offset: int) -> list[dict]:
    """`count` requests, every BAD_EVERY-th a bad one; returns one record per request."""
    from PIL import Image

    records = []
    for k in range(count):
        if (k + offset) % BAD_EVERY == BAD_EVERY - 1:
            status, seconds, _ = post(url, bad[(k + offset) % len(bad)])
            records.append({"good": False, "status": status, "seconds": seconds, "ok": 400 <= status < 500})
            continue
        photo = photos[(k + offset) % len(photos)]
        status, seconds, answer = post(url, {"dataframe_records": [{"image": base64.b64encode(photo).decode()}]})
        ok = status == 200 and answer is not None
        if ok:
            out = Image.open(io.BytesIO(base64.b64decode(answer["predictions"][0]["image"])))
            ok = out.size == Image.open(io.BytesIO(photo)).size
        records.append({"good": True, "status": status, "seconds": seconds, "ok": ok})
    return records


class PeakMemory:
    """The largest PSS of a process and its children together, sampled every 50 ms."""

    def __init__(self, pid: int):
        import psutil

        self.process, self.peak, self.running = psutil.Process(pid), 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        import psutil

        while self.running:
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    def reset(self) -> None:
        self.peak = 0

    def stop(self) -> None:
        self.running = False
        self.thread.join()


def serve(run_id: str, store: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--timeout", str(SERVER_TIMEOUT_S)],
        env={**os.environ, "MLFLOW_TRACKING_URI": store}, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("mlflow models serve exited before answering /ping")
        if _pings(base):
            return process, base
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError("mlflow models serve did not answer /ping within 240 s")


def _pings(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/ping", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def run(data: Path) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        store = f"sqlite:///{root / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = store
        run_id = log_default_model(root)
        photos = payloads(data)
        bad = bad_requests(photos["12mp"][0])
        process, base = serve(run_id, store, root)
        memory = PeakMemory(process.pid)
        result = {"machine": machine(), "bad_every": BAD_EVERY, "cases": {}}
        try:
            for kind, count in REQUESTS_PER_CLIENT.items():
                for clients in CLIENTS:
                    memory.reset()
                    started = time.perf_counter()
                    with ThreadPoolExecutor(clients) as pool:
                        jobs = [pool.submit(client, base + "/invocations", photos[kind], bad, count, i) for i in range(clients)]
                        records = [r for job in jobs for r in job.result()]
                    good = [r for r in records if r["good"]]
                    latencies = sorted(r["seconds"] for r in good)
                    result["cases"][f"{kind} x{clients}"] = {
                        "clients": clients, "requests": len(records), "bad_requests": len(records) - len(good),
                        "p50_seconds": round(statistics.median(latencies), 3),
                        "p95_seconds": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
                        "good_requests_per_s": round(len(good) / (time.perf_counter() - started), 2),
                        "peak_pss_mib": round(memory.peak / 2**20),
                        "all_good_answered": all(r["ok"] for r in good),
                        "all_bad_4xx": all(r["ok"] for r in records if not r["good"]),
                        "statuses": sorted({r["status"] for r in records}),
                    }
                    print(kind, clients, result["cases"][f"{kind} x{clients}"], flush=True)
            result["server_up_after"] = _pings(base)
        finally:
            memory.stop()
            process.terminate()
            process.wait(timeout=60)
    cases = result["cases"].values()
    result["goal_every_request_right_and_server_up_met"] = (
        result["server_up_after"] and all(c["all_good_answered"] and c["all_bad_4xx"] for c in cases))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    args = parser.parse_args()
    result = run(photo_folder(args.data))
    save_results("serving", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
