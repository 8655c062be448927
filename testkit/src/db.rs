//! A fresh database per test, on the Postgres at `TEST_DATABASE_URL`.

use sqlx::{Connection, PgConnection};

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

fn server_url() -> String {
    crate::stack_var("TEST_DATABASE_URL")
        .trim_end_matches('/')
        .to_owned()
}

/// A URL for a new, not yet created database named `<prefix>_<random>` (the services
/// create their own database at start).
pub fn fresh(prefix: &str) -> TestDatabase {
    let name = crate::unique(&format!("test_{prefix}"));
    TestDatabase {
        url: format!("{}/{name}", server_url()),
        name,
    }
}

impl TestDatabase {
    /// Drops the database (forcing out open connections).
    ///
    /// # Errors
    /// When Postgres is unreachable.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&format!("{}/postgres", server_url())).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}
