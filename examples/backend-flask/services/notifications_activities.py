"""The notifications feed: mock data in a custom span."""

from datetime import datetime, timedelta, timezone

from opentelemetry import trace

tracer = trace.get_tracer("notifications.activities")


class NotificationsActivities:
    @staticmethod
    def run():
        with tracer.start_as_current_span("notifications-activities-mock-data") as span:
            now = datetime.now(timezone.utc)
            results = [
                {
                    "uuid": "68f126b0-1ceb-4a33-88be-d90fa7109eee",
                    "handle": "coco",
                    "message": "I am white unicorn",
                    "created_at": (now - timedelta(days=2)).isoformat(),
                    "expires_at": (now + timedelta(days=5)).isoformat(),
                    "likes_count": 5,
                    "replies_count": 1,
                    "reposts_count": 0,
                    "replies": [],
                }
            ]
            span.set_attribute("app.now", now.isoformat())
            span.set_attribute("app.result_length", len(results))
            return results
