from django.urls import path

from risk.api import views

urlpatterns = [
    path("assess-risk", views.AssessRiskView.as_view(), name="api-assess-risk"),
    path("risk-rules", views.RiskRulesView.as_view(), name="api-risk-rules"),
]
