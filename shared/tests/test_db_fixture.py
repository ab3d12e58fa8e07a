from shared.db import Database
from sqlalchemy import text


async def test_database_url_fixture_gives_a_working_database(database_url: str) -> None:
    db = Database(database_url)
    async with db.transaction() as session:
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
    await db.dispose()


async def test_lower_folds_cyrillic_on_both_databases(database_url: str) -> None:
    """Searches compare lower(column) with the lowered query: SQLite's built-in lower() folds ASCII only."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT lower('Клуб ЛЮБИТЕЛЕЙ Coffee 咖啡')"))).scalar_one() == \
                "клуб любителей coffee 咖啡"
    finally:
        await db.dispose()
