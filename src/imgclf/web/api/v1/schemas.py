"""The v1 API's bodies as pydantic models: what OpenAPI documents (with an example each) and
what the routes validate and answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JOB_ID_EXAMPLE = "5f0c1e7a-9a53-4a4e-9d3b-8c0f7b1f2a61"


class AdjustmentsRequest(BaseModel):
    """Changes to the photo before it is classified, applied in this order: rotate, flip, brightness,
    contrast, colour, sharpness. Factors are Pillow's `ImageEnhance` factors: 1 leaves the photo as
    it is, 0 is black / flat grey / greyscale / blurred, 2 doubles the effect; kept to 2 decimals."""

    model_config = ConfigDict(extra="forbid")

    brightness: float = Field(default=1.0, ge=0, le=2, strict=True, description="0 (black) to 2; 1 unchanged.")
    contrast: float = Field(default=1.0, ge=0, le=2, strict=True, description="0 (flat grey) to 2; 1 unchanged.")
    color: float = Field(
        default=1.0, ge=0, le=2, strict=True, description="Saturation: 0 (greyscale) to 2; 1 unchanged."
    )
    sharpness: float = Field(
        default=1.0, ge=0, le=2, strict=True, description="0 (blurred) to 2 (sharpened); 1 unchanged."
    )
    rotate: Literal[0, 90, 180, 270] = Field(default=0, description="Degrees clockwise.")
    flip: bool = Field(default=False, strict=True, description="Mirror left-right, after the rotation.")

    @field_validator("rotate", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # JSON's false is not 0 degrees: a Literal of ints would take it (False == 0 in Python).
        if isinstance(value, bool):
            raise ValueError("Input should be 0, 90, 180 or 270")
        return value


class Adjustments(AdjustmentsRequest):
    """The adjustments a job applied (all six values)."""


class ClassificationRequest(BaseModel):
    """A JSON request: a model and a catalogue photo (upload a photo with multipart/form-data)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "efficientnet_lite0", "image": "chelsea.jpg"},
                {
                    "model": "efficientnet_lite0",
                    "image": "chelsea.jpg",
                    "adjustments": {"brightness": 1.3, "rotate": 90},
                },
            ]
        },
    )

    model: str = Field(description="A model id from GET /api/v1/models.", max_length=255)
    image: str = Field(description="A catalogue image id from GET /api/v1/images.", max_length=255)
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Optional webhook: POSTed the job resource, signed, when the job ends. Only hosts in "
        "IMGCLF_WEBHOOK_HOSTS (empty by default: webhooks off).",
    )
    adjustments: AdjustmentsRequest | None = Field(
        default=None, description="Optional changes to the photo before classifying; part of the cache key."
    )


class TopClass(BaseModel):
    label: str = Field(description="The ImageNet class name.")
    class_index: int | None = Field(description="The ImageNet class index (0-999).")
    probability: float = Field(description="Softmax probability, 0 to 1.")


class Histogram(BaseModel):
    red: list[int] = Field(description="256 pixel counts, for values 0 to 255.", min_length=256, max_length=256)
    green: list[int] = Field(description="256 pixel counts.", min_length=256, max_length=256)
    blue: list[int] = Field(description="256 pixel counts.", min_length=256, max_length=256)
    luminance: list[int] = Field(description="256 pixel counts of L = 0.299 R + 0.587 G + 0.114 B.")


class Result(BaseModel):
    top5: list[TopClass] = Field(description="The five most probable classes, highest first.")
    histogram: Histogram | None = Field(
        description="The photo's histograms, counted on the picture the model saw (decoded at about the model's "
        "input size, after the adjustments); null for results stored before histograms were kept."
    )


class CatalogueImage(BaseModel):
    id: str | None = Field(description="The catalogue image id.")


class UploadedImage(BaseModel):
    sha256: str = Field(description="SHA-256 of the uploaded bytes (the same photo twice is one upload).")
    format: str = Field(description="The image type, decided from the bytes: jpeg, png, webp, gif, bmp or tiff.")
    width: int = Field(description="Width in pixels, upright (EXIF orientation applied).")
    height: int = Field(description="Height in pixels, upright.")
    filename: str | None = Field(description="The file name the client sent, as data only (never a path).")


class Timings(BaseModel):
    queued: float | None = Field(description="Milliseconds from submission until a worker started it.")
    decode: float | None = Field(description="Milliseconds the worker spent decoding the image.")
    preprocess: float | None = Field(description="Milliseconds resizing and normalising it for the model.")
    inference: float | None = Field(description="Milliseconds of the model's forward pass and the top 5.")
    total: float | None = Field(description="Milliseconds from submission to the end.")


class JobError(BaseModel):
    code: str = Field(description="A stable code: invalid_image, unknown_image, classification_error, timed_out, ...")
    message: str = Field(description="What went wrong, in words a person can act on.")


class Links(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="This resource.")
    page: str = Field(description="The job's page, to open in a browser or send to someone.")
    events: str = Field(description="Server-Sent Events of this job's progress.")


Status = Literal["queued", "running", "succeeded", "failed", "canceled"]

RESOURCE_EXAMPLE: dict[str, Any] = {
    "id": JOB_ID_EXAMPLE,
    "status": "succeeded",
    "model": "efficientnet_lite0",
    "image": {"id": "chelsea.jpg"},
    "adjustments": None,
    "created_at": "2026-11-27T12:00:00.000Z",
    "started_at": "2026-11-27T12:00:00.004Z",
    "finished_at": "2026-11-27T12:00:00.031Z",
    "position": None,
    "eta_seconds": None,
    "attempt": 1,
    "cached": False,
    "result": {
        "top5": [
            {"label": "tabby", "class_index": 281, "probability": 0.48},
            {"label": "tiger cat", "class_index": 282, "probability": 0.21},
            {"label": "Egyptian cat", "class_index": 285, "probability": 0.12},
            {"label": "lynx", "class_index": 287, "probability": 0.02},
            {"label": "remote control", "class_index": 761, "probability": 0.01},
        ],
        "histogram": {channel: [0] * 255 + [4096] for channel in ("red", "green", "blue", "luminance")},
    },
    "timings_ms": {"queued": 4.1, "decode": 6.2, "preprocess": 3.3, "inference": 12.8, "total": 31.0},
    "error": None,
    "links": {
        "self": f"/api/v1/classifications/{JOB_ID_EXAMPLE}",
        "page": f"/results/{JOB_ID_EXAMPLE}",
        "events": f"/api/v1/classifications/{JOB_ID_EXAMPLE}/events",
    },
}

QUEUED_EXAMPLE: dict[str, Any] = {
    **RESOURCE_EXAMPLE,
    "status": "queued",
    "started_at": None,
    "finished_at": None,
    "position": 0,
    "eta_seconds": 1,
    "result": None,
    "timings_ms": dict.fromkeys(RESOURCE_EXAMPLE["timings_ms"]),
}


class Classification(BaseModel):
    """A classification job: where it stands and, once it succeeded, its top 5."""

    model_config = ConfigDict(json_schema_extra={"examples": [RESOURCE_EXAMPLE]})

    id: str = Field(description="The job id (the ticket).")
    status: Status
    model: str | None = Field(description="The model id.")
    image: CatalogueImage | UploadedImage = Field(description="What was classified.")
    adjustments: Adjustments | None = Field(description="What was changed before classifying; null for nothing.")
    created_at: str | None = Field(description="When it was submitted (RFC 3339, UTC).")
    started_at: str | None = Field(description="When a worker started it (RFC 3339), once running.")
    finished_at: str | None = Field(description="When it ended (RFC 3339), once ended.")
    position: int | None = Field(description="While queued: how many jobs are ahead of it.")
    eta_seconds: int | None = Field(description="While queued or running: about how many seconds until it ends.")
    attempt: int = Field(description="Which try this is (a job whose worker died is tried again).")
    cached: bool = Field(description="true when the answer came from the result cache (no worker ran).")
    result: Result | None = Field(description="Once succeeded: the top 5.")
    timings_ms: Timings
    error: JobError | None = Field(description="Once failed or canceled: why.")
    links: Links


class FieldProblem(BaseModel):
    field: str = Field(description="The request field (or header) that is wrong.")
    detail: str = Field(description="What is wrong with it and what to send instead.")


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:imgclf:problem:invalid-request",
                    "title": "Unprocessable Entity",
                    "status": 422,
                    "detail": "model: Unknown model 'resnet'; pick one of: efficientnet_lite0.",
                    "errors": [
                        {"field": "model", "detail": "Unknown model 'resnet'; pick one of: efficientnet_lite0."}
                    ],
                }
            ]
        }
    )

    type: str = Field(description="A URI naming the kind of problem (urn:imgclf:problem:<slug>).")
    title: str = Field(description="The HTTP status's phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, in words a person can act on.")
    errors: list[FieldProblem] | None = Field(default=None, description="For invalid fields: one entry per field.")


MODEL_EXAMPLE: dict[str, Any] = {
    "id": "efficientnet_lite0",
    "name": "EfficientNet-Lite0",
    "input_size": 224,
    "runtime": "onnxruntime",
    "available": True,
    "reason": None,
}


class ModelInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MODEL_EXAMPLE]})

    id: str
    name: str = Field(description="A name for people.")
    input_size: int = Field(description="The square side, in pixels, the model sees.")
    runtime: str | None = Field(
        description="The inference runtime the workers run it on (null before a worker has started)."
    )
    available: bool = Field(description="true if it may be picked now.")
    reason: str | None = Field(description="Why it is not available (weights missing), else null.")


class ModelList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"models": [MODEL_EXAMPLE]}]})

    models: list[ModelInfo]


class CatalogueEntry(BaseModel):
    id: str
    url: str = Field(description="The photo itself.")
    thumbnail_url: str = Field(description="A small JPEG of it (at most 256 pixels a side).")


class ImagePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "images": [
                        {
                            "id": "chelsea.jpg",
                            "url": "/images/chelsea.jpg",
                            "thumbnail_url": "/api/v1/images/chelsea.jpg/thumbnail",
                        }
                    ],
                    "page": 1,
                    "per_page": 20,
                    "total": 1,
                    "next": None,
                }
            ]
        }
    )

    images: list[CatalogueEntry]
    page: int
    per_page: int
    total: int = Field(description="Images in the whole catalogue.")
    next: str | None = Field(description="The next page's URL, null on the last.")


class ComparisonRequest(BaseModel):
    """A JSON request: one catalogue photo for several models (upload a photo with multipart/form-data)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"image": "chelsea.jpg"},
                {"image": "chelsea.jpg", "models": ["efficientnet_lite0", "resnet18"], "adjustments": {"flip": True}},
            ]
        },
    )

    image: str = Field(description="A catalogue image id from GET /api/v1/images.", max_length=255)
    models: list[str] | None = Field(
        default=None,
        max_length=32,
        description="Model ids from GET /api/v1/models, each classified once; omitted or empty: every available model.",
    )
    adjustments: AdjustmentsRequest | None = Field(
        default=None, description="Optional changes to the photo before classifying, the same for every model."
    )


class SharedClass(BaseModel):
    class_index: int | None = Field(description="The ImageNet class index.")
    label: str = Field(description="The ImageNet class name.")
    models: list[str] = Field(description="The models that have it in their top 5 (two or more).")


class Agreement(BaseModel):
    top1: str | None = Field(
        description="The class every model that succeeded ranks first (when two or more did and they agree), else null."
    )
    classes: list[SharedClass] = Field(
        description="Classes in the top 5 of two or more models, most models first, then by summed probability."
    )


class ComparisonLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="This resource.")
    page: str = Field(description="The comparison's page, to open in a browser or send to someone.")


class Comparison(BaseModel):
    """One photo classified by several models: each model's job resource, and where they agree."""

    id: str = Field(description="The comparison id.")
    status: Status = Field(
        description="queued or running while any job is; then succeeded if every job did, else failed "
        "(each classification says why)."
    )
    image: CatalogueImage | UploadedImage
    adjustments: Adjustments | None
    created_at: str | None
    classifications: list[Classification] = Field(description="One job per model, in the order asked for.")
    agreement: Agreement
    links: ComparisonLinks


COMPARISON_EXAMPLE: dict[str, Any] = {
    "id": "0d7f7a52-2c1e-4b8e-9a0e-51a3f0c4d9b2",
    "status": "succeeded",
    "image": {"id": "chelsea.jpg"},
    "adjustments": None,
    "created_at": "2026-11-27T12:00:00.000Z",
    "classifications": [
        RESOURCE_EXAMPLE,
        {
            **RESOURCE_EXAMPLE,
            "id": "9b2d4c1e-7f3a-4e55-8c0d-2a6b1e9f3c77",
            "model": "efficientnet_lite1",
            "links": {
                "self": "/api/v1/classifications/9b2d4c1e-7f3a-4e55-8c0d-2a6b1e9f3c77",
                "page": "/results/9b2d4c1e-7f3a-4e55-8c0d-2a6b1e9f3c77",
                "events": "/api/v1/classifications/9b2d4c1e-7f3a-4e55-8c0d-2a6b1e9f3c77/events",
            },
        },
    ],
    "agreement": {
        "top1": "tabby",
        "classes": [
            {"class_index": 281, "label": "tabby", "models": ["efficientnet_lite0", "efficientnet_lite1"]},
            {"class_index": 282, "label": "tiger cat", "models": ["efficientnet_lite0", "efficientnet_lite1"]},
        ],
    },
    "links": {
        "self": "/api/v1/comparisons/0d7f7a52-2c1e-4b8e-9a0e-51a3f0c4d9b2",
        "page": "/comparisons/0d7f7a52-2c1e-4b8e-9a0e-51a3f0c4d9b2",
    },
}
