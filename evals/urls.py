app_name = "evals"
urlpatterns: list = []
