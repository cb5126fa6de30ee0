//! Categories and organizers in D1.

use serde::Deserialize;
use worker::D1Database;

use super::d1::{all, first, int, is_unique_violation, opt_text, run, text};
use crate::error::ApiError;

#[derive(Debug, Clone, Deserialize)]
pub struct CategoryRow {
    pub id: String,
    pub name: String,
    pub slug: String,
}

pub async fn list_categories(db: &D1Database) -> Result<Vec<CategoryRow>, ApiError> {
    all(
        db,
        "SELECT id, name, slug FROM categories ORDER BY name, id",
        &[],
    )
    .await
}

pub enum CategoryInsert {
    Created,
    SlugTaken,
}

pub async fn insert_category(
    db: &D1Database,
    category: &CategoryRow,
    now_ms: i64,
) -> Result<CategoryInsert, ApiError> {
    let result = super::d1::stmt(
        db,
        "INSERT INTO categories (id, name, slug, created_at) VALUES (?1, ?2, ?3, ?4)",
        &[
            text(&category.id),
            text(&category.name),
            text(&category.slug),
            int(now_ms),
        ],
    )?
    .run()
    .await;
    match result {
        Ok(_) => Ok(CategoryInsert::Created),
        Err(e) if is_unique_violation(&e) => Ok(CategoryInsert::SlugTaken),
        Err(e) => Err(e.into()),
    }
}

/// The categories named by id or slug (each reference is matched against both).
pub async fn find_categories(
    db: &D1Database,
    refs: &[String],
) -> Result<Vec<CategoryRow>, ApiError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(refs).map_err(ApiError::internal)?;
    all(
        db,
        "SELECT id, name, slug FROM categories \
         WHERE id IN (SELECT value FROM json_each(?1)) OR slug IN (SELECT value FROM json_each(?1)) \
         ORDER BY name, id",
        &[text(&list)],
    )
    .await
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrganizerRow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub description: String,
    pub logo_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_organizer(db: &D1Database, organizer: &OrganizerRow) -> Result<(), ApiError> {
    run(
        db,
        "INSERT INTO organizers (id, owner_id, name, description, logo_url, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[
            text(&organizer.id),
            text(&organizer.owner_id),
            text(&organizer.name),
            text(&organizer.description),
            opt_text(organizer.logo_url.as_deref()),
            int(organizer.created_at),
            int(organizer.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find_organizer(db: &D1Database, id: &str) -> Result<Option<OrganizerRow>, ApiError> {
    first(
        db,
        "SELECT id, owner_id, name, description, logo_url, created_at, updated_at \
         FROM organizers WHERE id = ?1",
        &[text(id)],
    )
    .await
}
