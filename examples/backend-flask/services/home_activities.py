"""The home feed: mock activities, wrapped in a custom span (and an X-Ray subsegment when on)."""

import logging
from datetime import datetime, timedelta, timezone

from opentelemetry import trace

tracer = trace.get_tracer("home.activities")
logger = logging.getLogger("backend-flask.home")


class HomeActivities:
    @staticmethod
    def run(xray_recorder=None):
        with tracer.start_as_current_span("home-activities-mock-data") as span:
            now = datetime.now(timezone.utc)
            span.set_attribute("app.now", now.isoformat())
            results = _mock_results(now)
            span.set_attribute("app.result_length", len(results))
            logger.info("home activities: %d results", len(results))
            if xray_recorder is not None:
                _record_xray_subsegment(xray_recorder, now, results)
            return results


def _record_xray_subsegment(xray_recorder, now, results):
    """The custom X-Ray subsegment the bootcamp adds: an annotation and some metadata."""
    subsegment = xray_recorder.begin_subsegment("mock-data")
    try:
        subsegment.put_annotation("result_length", len(results))
        subsegment.put_metadata("now", now.isoformat(), "app")
        subsegment.put_metadata("handles", [r["handle"] for r in results], "app")
        # A nested subsegment, so the trace has more than one level.
        nested = xray_recorder.begin_subsegment("format-results")
        try:
            nested.put_annotation("formatted", True)
        finally:
            xray_recorder.end_subsegment()
    finally:
        xray_recorder.end_subsegment()


def _mock_results(now):
    return [
        {
            "uuid": "68f126b0-1ceb-4a33-88be-d90fa7109eee",
            "handle": "Andrew Brown",
            "message": "Cloud is fun!",
            "created_at": (now - timedelta(days=2)).isoformat(),
            "expires_at": (now + timedelta(days=5)).isoformat(),
            "likes_count": 5,
            "replies_count": 1,
            "reposts_count": 0,
            "replies": [
                {
                    "uuid": "26e12864-1c26-5c3a-9658-97a10f8fea67",
                    "reply_to_activity_uuid": "68f126b0-1ceb-4a33-88be-d90fa7109eee",
                    "handle": "Worf",
                    "message": "This post has no honor!",
                    "likes_count": 0,
                    "replies_count": 0,
                    "reposts_count": 0,
                    "created_at": (now - timedelta(days=2)).isoformat(),
                }
            ],
        },
        {
            "uuid": "66e12864-8c26-4c3a-9658-95a10f8fea67",
            "handle": "Worf",
            "message": "I am out of prune juice",
            "created_at": (now - timedelta(days=7)).isoformat(),
            "expires_at": (now + timedelta(days=9)).isoformat(),
            "likes": 0,
            "replies": [],
        },
        {
            "uuid": "248959df-3079-4947-b847-9e0892d1bab4",
            "handle": "Garek",
            "message": "My dear doctor, I am just simple tailor",
            "created_at": (now - timedelta(hours=1)).isoformat(),
            "expires_at": (now + timedelta(hours=12)).isoformat(),
            "likes": 0,
            "replies": [],
        },
    ]
