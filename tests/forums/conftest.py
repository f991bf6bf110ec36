from tests.forums.helpers import _mock_model_layer, decide, make_board, moderator, post_thread  # noqa: F401
