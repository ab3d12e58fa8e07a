from shared.db import Database
from sqlalchemy import text


async def test_database_url_fixture_gives_a_working_database(database_url: str) -> None:
    db = Database(database_url)
    async with db.transaction() as session:
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
    await db.dispose()
