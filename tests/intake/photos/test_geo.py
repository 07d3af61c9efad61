"""gps_distance_km: known distances, symmetry, bad coordinates refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.intake.photos import (
    EARTH_MEAN_RADIUS_KM,
    InvalidCoordinates,
    gps_distance_km,
)

# --------------------------------------------------------------------------------------
# gps_distance_km
# --------------------------------------------------------------------------------------


def test_distance_known_values() -> None:
    assert gps_distance_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi / 180, rel=1e-12)
    assert gps_distance_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi, rel=1e-12)
    assert gps_distance_km((90.0, 0.0), (-90.0, 0.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi, rel=1e-12)
    assert gps_distance_km((13.7565, 100.5018), (13.7565, 100.5018)) == 0.0
    # Bangkok (Democracy Monument) to Chiang Mai: about 582 km as the crow flies
    assert gps_distance_km((13.7565, 100.5018), (18.79, 98.985)) == pytest.approx(582, abs=3)
    # across the antimeridian
    assert gps_distance_km((0.0, 179.5), (0.0, -179.5)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi / 180, rel=1e-9)


latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)
points = st.tuples(latitudes, longitudes)


@given(points, points)
def test_distance_is_symmetric_and_matches_the_spherical_law_of_cosines(a: tuple[float, float], b: tuple[float, float]) -> None:
    distance = gps_distance_km(a, b)
    assert distance == pytest.approx(gps_distance_km(b, a), abs=1e-9)
    assert 0 <= distance <= EARTH_MEAN_RADIUS_KM * math.pi + 1e-9
    phi1, phi2, dlambda = math.radians(a[0]), math.radians(b[0]), math.radians(b[1] - a[1])
    cosine = math.sin(phi1) * math.sin(phi2) + math.cos(phi1) * math.cos(phi2) * math.cos(dlambda)
    reference = EARTH_MEAN_RADIUS_KM * math.acos(max(-1.0, min(1.0, cosine)))
    assert distance == pytest.approx(reference, abs=0.05)  # the law of cosines loses precision for tiny and antipodal distances


@pytest.mark.parametrize("bad", [(91.0, 0.0), (0.0, 180.5), (math.nan, 0.0), (0.0, math.inf), (1.0,)])
def test_distance_refuses_bad_coordinates(bad: tuple[float, ...]) -> None:
    with pytest.raises(InvalidCoordinates):
        gps_distance_km(bad, (0.0, 0.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gps_distance_km((0.0, 0.0), bad)  # type: ignore[arg-type]
