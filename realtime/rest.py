"""The gateway's REST endpoints: operators' announcements to every connection."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.services import announcement_data, announcement_publish

_ANNOUNCEMENT = inline_serializer(
    "Announcement",
    {
        "announcement_id": serializers.CharField(),
        "message": serializers.CharField(),
        "level": serializers.ChoiceField(choices=["info", "warning", "critical"]),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "announced_by": serializers.CharField(allow_null=True),
        "timestamp": serializers.DateTimeField(),
    },
)


class AnnouncementView(APIView):
    """Send an announcement to every open WebSocket connection (permission `realtime.announce`)."""

    @extend_schema(
        request=inline_serializer(
            "AnnouncementRequest",
            {
                "message": serializers.CharField(max_length=500),
                "level": serializers.ChoiceField(choices=["info", "warning", "critical"], default="info"),
                "expires_in": serializers.IntegerField(required=False, allow_null=True, help_text="seconds"),
            },
        ),
        responses={201: _ANNOUNCEMENT},
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        announcement = announcement_publish(
            message=data.get("message"),
            level=data.get("level", "info"),
            expires_in=data.get("expires_in"),
            user=request.user,
            channel="rest",
        )
        return Response(announcement_data(announcement=announcement), status=status.HTTP_201_CREATED)
