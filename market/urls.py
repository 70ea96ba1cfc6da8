from django.urls import re_path

from . import api

app_name = "market"

urlpatterns = [re_path(r"^bars/?$", api.PriceBarsView.as_view(), name="price-bars")]
