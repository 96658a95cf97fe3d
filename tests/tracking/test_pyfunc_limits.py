"""The served model refuses oversized or unreadable requests with HTTP 400 and the reason.

Requests go through MLflow's own scoring-server handler (`invocations`, what
`mlflow models serve` runs per request), in-process, with the colorizer's pyfunc.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from conftest import repo_model
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from PIL import Image

from colorizer.model.network import build_model
from colorizer.tracking import pyfunc


class Served:
    """What the scoring server calls: a model with predict(data, params)."""

    metadata = None

    def __init__(self):
        config = repo_model(width=8, prior_correction=0.0, output_stride=2)
        self.wrapped = pyfunc.ColorizerModel()
        self.wrapped.model = build_model(config, 32)

    def predict(self, data, params=None):
        return self.wrapped.predict(None, data, params)


@pytest.fixture(scope="module")
def served():
    return Served()


def png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def post(served, *images: str):
    """(HTTP status, JSON body) as the scoring server would answer."""
    body = json.dumps({"dataframe_records": [{"image": image} for image in images]})
    try:
        answer = scoring_server.invocations(body, "application/json", served, None)
    except MlflowException as err:
        return err.get_http_status_code(), json.loads(err.serialize_as_json())
    return answer.status, json.loads(answer.response)


def test_default_cap_refuses_a_photo_over_16_megapixels(served, monkeypatch):
    monkeypatch.delenv(pyfunc.MAX_PIXELS_ENV, raising=False)
    assert pyfunc.DEFAULT_MAX_REQUEST_PIXELS == 16_000_000
    status, body = post(served, png(4100, 4000))  # 16.4 MP, a 100 KB request
    assert status == 400
    assert "more than 16,000,000 pixels" in body["message"] and "4100x4000" in body["message"]


def test_cap_counts_every_image_of_the_request(served, monkeypatch):
    monkeypatch.setenv(pyfunc.MAX_PIXELS_ENV, "100000")
    status, body = post(served, png(300, 300))
    assert status == 200 and len(body["predictions"]) == 1
    status, body = post(served, png(300, 300), png(300, 300))  # 180,000 pixels together
    assert status == 400 and "image 1 is 300x300" in body["message"]


def test_unreadable_images_are_a_400_with_the_reason(served):
    status, body = post(served, base64.b64encode(b"not an image at all").decode())
    assert status == 400 and "image 0: not an image" in body["message"]
    status, body = post(served, "abc")  # broken base64 padding
    assert status == 400 and "not base64" in body["message"]


def test_bad_limit_in_the_environment_is_named(served, monkeypatch):
    monkeypatch.setenv(pyfunc.MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=pyfunc.MAX_PIXELS_ENV):
        pyfunc.max_request_pixels()
