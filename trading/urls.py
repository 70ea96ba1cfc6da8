from django.urls import path, re_path

from . import api

app_name = "trading"

urlpatterns = [
    re_path(r"^orders/history/?$", api.OrderHistoryView.as_view(), name="order-history"),
    path("orders/<int:pk>", api.OrderDetailView.as_view(), name="order-detail"),
    re_path(r"^fills/?$", api.FillListView.as_view(), name="fills"),
    re_path(r"^account/?$", api.AccountView.as_view(), name="account"),
]
