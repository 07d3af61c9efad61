"""Distances on the earth between photo locations (``gps`` of ``PhotoInfo``) and polling units."""

from __future__ import annotations

import math

from ledger.intake.photos.errors import InvalidCoordinates

__all__ = ["EARTH_MEAN_RADIUS_KM", "gps_distance_km"]

EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, used by :func:`gps_distance_km`."""


def gps_distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in km between two ``(latitude, longitude)`` points.

    Uses a sphere of radius ``EARTH_MEAN_RADIUS_KM``; the error against the WGS 84
    ellipsoid is under 0.5 %, ample for "was this photo taken near its polling unit".
    Raises :class:`InvalidCoordinates` for a non-finite or out-of-range coordinate.
    """
    for name, point in (("a", a), ("b", b)):
        if len(point) != 2:
            raise InvalidCoordinates(f"{name} must be a (latitude, longitude) pair, got {point!r}")
        latitude, longitude = point
        if not (math.isfinite(latitude) and math.isfinite(longitude)):
            raise InvalidCoordinates(f"{name} = {point!r} is not finite")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise InvalidCoordinates(f"{name} = {point!r} is out of range: latitude must be within ±90, longitude ±180")
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(b[1] - a[1]) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
