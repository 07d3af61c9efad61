from datetime import UTC, datetime, timedelta, timezone

from ledger.core.timefmt import format_time_micro, format_time_seconds

BANGKOK = timezone(timedelta(hours=7))


def test_micro_writes_utc_with_six_digits_of_fraction():
    assert format_time_micro(datetime(2023, 5, 14, 17, 31, 7, 250, tzinfo=BANGKOK)) == "2023-05-14T10:31:07.000250Z"
    assert format_time_micro(datetime(2023, 5, 14, 10, 31, 7, tzinfo=UTC)) == "2023-05-14T10:31:07.000000Z"


def test_seconds_drops_the_fraction_without_rounding():
    assert format_time_seconds(datetime(2023, 5, 14, 17, 31, 7, 999999, tzinfo=BANGKOK)) == "2023-05-14T10:31:07Z"


def test_seconds_is_micro_without_its_fraction():
    moment = datetime(2023, 12, 31, 23, 59, 59, 123456, tzinfo=UTC)
    assert format_time_seconds(moment) == format_time_micro(moment).split(".")[0] + "Z"
