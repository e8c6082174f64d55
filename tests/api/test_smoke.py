from tests.support.inprocess import Api


def test_a_question_streams_an_answer(api: Api) -> None:
    response, events = api.chat()
    assert response.status_code == 200
    assert [e.name for e in events] == ["start", "context", "token", "token", "token", "end"]
