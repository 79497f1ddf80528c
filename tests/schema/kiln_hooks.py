"""Schemathesis hooks for Kiln: real images, valid `ops`, and two checks.

A random byte string is never an image and a random string is rarely an
`ops` list, so without these hooks every generated upload would stop at
the 415 or the 400. With them, generated requests reach the operations, the
201/202 and the resources behind them:

- image/* bodies are real images, written by the e2e test (made by the
  Rust test helpers) to $KILN_SCHEMA_IMAGES;
- the `kiln-ops` string format (openapi.yaml, the `ops` parameter) is
  generated from the grammar the document describes: any operation, any
  argument order, any value in range, optional whitespace.

The checks: a schema-valid upload refused with 422 must say why in terms
of the request (see `explained_refusal`), and every operation that can
succeed must have succeeded at least once in the run.
"""

import os
import pathlib

import schemathesis
from hypothesis import strategies as st

IMAGES = pathlib.Path(os.environ["KILN_SCHEMA_IMAGES"])

for media_type, name in [
    ("image/png", "sample.png"),
    ("image/jpeg", "sample.jpg"),
    ("image/gif", "sample.gif"),
    ("image/webp", "sample.webp"),
]:
    schemathesis.openapi.media_type(media_type, st.just((IMAGES / name).read_bytes()))


# --- the ops grammar (crates/kiln-image/src/ops/parse.rs) -------------------

MAX_OPS = 32
U32_MAX = 2**32 - 1

space = st.sampled_from(["", "", "", " ", "  ", "\t"])


def number(low, high):
    return st.integers(low, high).map(str)


def decimal(low, high):
    """A decimal in [low, high] written as the grammar allows: digits, an
    optional fraction, an optional sign."""
    return st.decimals(low, high, places=3, allow_nan=False, allow_infinity=False).map(
        lambda d: format(d.normalize(), "f")
    )


def positive_decimal(high):
    return decimal(0, high).filter(lambda text: float(text) > 0)


@st.composite
def keyed(draw, name, required, optional):
    """`name(k=v,...)` with the required keys, some optional ones, in any order."""
    chosen = list(required.items()) + [
        item for item in optional.items() if draw(st.booleans())
    ]
    ordered = draw(st.permutations(chosen))
    args = [f"{key}{draw(space)}={draw(space)}{draw(value)}" for key, value in ordered]
    return f"{name}{draw(space)}({draw(space)}{(draw(space) + ',' + draw(space)).join(args)}{draw(space)})"


@st.composite
def resize(draw):
    # Sides up to 2048 (and the largest, 16384, alone below): any side in
    # between is as valid, but a synchronous request that makes a 50 MP
    # image and blurs it 32 times only makes the run slow; kiln-image's
    # tests cover the whole range.
    side = number(1, 2048)
    fit = st.sampled_from(["contain", "cover", "fill"])
    sides = draw(st.sampled_from([{"w": side}, {"h": side}, {"w": side, "h": side}]))
    return draw(keyed("resize", sides, {"fit": fit}))


def positional(name, values):
    return st.builds(lambda value, a, b: f"{name}({a}{value}{b})", values, space, space)


operation = st.one_of(
    resize(),
    st.sampled_from(["resize(w=16384)", "resize(h=16384)"]),
    keyed(
        "crop",
        {"x": number(0, U32_MAX), "y": number(0, U32_MAX), "w": number(1, U32_MAX), "h": number(1, U32_MAX)},
        {},
    ),
    positional("rotate", st.sampled_from(["90", "180", "270"])),
    positional("flip", st.sampled_from(["h", "v"])),
    keyed("blur", {"sigma": positive_decimal(50)}, {}),
    keyed("sharpen", {"sigma": positive_decimal(20)}, {"threshold": number(0, 255)}),
    st.sampled_from(["grayscale", "grayscale()"]),
    positional("brightness", number(-255, 255)),
    positional("contrast", decimal(-100, 100)),
    positional("format", st.sampled_from(["jpeg", "png", "webp", "gif", "avif", "auto"])),
    positional("quality", number(1, 100)),
)

ops = st.lists(st.tuples(space, operation, space), min_size=1, max_size=MAX_OPS).map(
    lambda items: ",".join(before + op + after for before, op, after in items)
)

schemathesis.openapi.format("kiln-ops", ops)


# --- checks -----------------------------------------------------------------

# What a schema-valid upload may still be refused for with 422: what no
# schema can state, because it depends on the image or on earlier requests.
EXPLAINED_422 = {
    "urn:kiln:problem:idempotency-key-reused": (),
    "urn:kiln:problem:unprocessable-image": (
        "invalid operation:",  # e.g. a crop outside this image
        "operations would produce",  # an output over the pixel cap
    ),
}


@schemathesis.check
def explained_refusal(ctx, response, case):
    """A 422 to a schema-valid upload is an idempotency key reused for a
    different request, or operations that do not fit this image; never an
    image Kiln failed to read (the samples are valid)."""
    if response.status_code != 422 or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    problem = response.json()
    reasons = EXPLAINED_422.get(problem.get("type"))
    if reasons is None:
        raise AssertionError(f"unexpected 422 for a schema-valid request: {problem}")
    if reasons and not any(problem.get("detail", "").startswith(reason) for reason in reasons):
        raise AssertionError(f"a 422 the request does not explain: {problem}")
    return None


@schemathesis.check
class EverySuccessReached:
    """Each of these operations answered 2xx at least once: the run got past
    the refusals to the work itself."""

    MUST_SUCCEED = {"POST /images", "GET /operations/{id}", "GET /images/{id}", "DELETE /images/{id}"}

    def __init__(self):
        self.reached = set()

    def after_response(self, ctx, response, case):
        if 200 <= response.status_code < 300:
            self.reached.add(case.operation.label)

    def after_run(self, ctx):
        missing = self.MUST_SUCCEED - self.reached
        if missing:
            raise AssertionError("never answered 2xx: " + ", ".join(sorted(missing)))
