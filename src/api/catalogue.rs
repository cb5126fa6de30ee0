//! Categories and organizers: the catalogue events are filed under.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::access::Action;
use crate::domain::catalogue::{
    parse_new_category, parse_new_organizer, CreateCategoryRequest, CreateOrganizerRequest,
};
use crate::domain::ids::OrganizerId;
use crate::domain::validation::format_rfc3339;
use crate::error::ApiError;
use crate::error::Problem;
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::catalogue::{self as store, CategoryInsert, CategoryRow, OrganizerRow};
use crate::store::d1;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub id: String,
    #[schema(example = "Âm nhạc")]
    pub name: String,
    #[schema(example = "am-nhac")]
    pub slug: String,
}

impl From<&CategoryRow> for Category {
    fn from(row: &CategoryRow) -> Self {
        Category {
            id: row.id.clone(),
            name: row.name.clone(),
            slug: row.slug.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CategoryEnvelope {
    pub category: Category,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<Category>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organizer {
    pub id: String,
    pub name: String,
    pub description: String,
    pub logo_url: Option<String>,
    /// The user who created it; only they file events under it.
    pub owner_id: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&OrganizerRow> for Organizer {
    fn from(row: &OrganizerRow) -> Self {
        Organizer {
            id: row.id.clone(),
            name: row.name.clone(),
            description: row.description.clone(),
            logo_url: row.logo_url.clone(),
            owner_id: row.owner_id.clone(),
            created_at: format_rfc3339(row.created_at),
            updated_at: format_rfc3339(row.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrganizerEnvelope {
    pub organizer: Organizer,
}

#[utoipa::path(get, path = "/api/categories", tag = "catalogue",
    responses((status = 200, description = "Every category, by name", body = CategoryList)))]
pub async fn list_categories(rc: &mut RequestContext) -> ApiResult {
    rc.permit(&rc.actor()?, None, &Action::ListCategories)?;
    let rows = store::list_categories(&d1::db(&rc.env)?).await?;
    json_response(
        200,
        &CategoryList {
            items: rows.iter().map(Category::from).collect(),
        },
    )
}

#[utoipa::path(post, path = "/api/categories", tag = "catalogue", security(("bearer" = [])),
    request_body = CreateCategoryRequest,
    responses(
        (status = 201, body = CategoryEnvelope),
        (status = 400, description = "VALIDATION_FAILED", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "Platform admins only", body = Problem),
        (status = 409, description = "CATEGORY_EXISTS: a category with the same slug", body = Problem)))]
pub async fn create_category(rc: &mut RequestContext) -> ApiResult {
    rc.permit(&rc.actor()?, None, &Action::CreateCategory)?;
    let body: CreateCategoryRequest = rc.json().await?;
    let category = parse_new_category(&body)?;
    let row = CategoryRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: category.name.into_inner(),
        slug: category.slug.as_str().to_string(),
    };
    match store::insert_category(&d1::db(&rc.env)?, &row, rc.now_ms).await? {
        CategoryInsert::Created => json_response(
            201,
            &CategoryEnvelope {
                category: Category::from(&row),
            },
        ),
        CategoryInsert::SlugTaken => Err(ApiError::rule(
            409,
            "CATEGORY_EXISTS",
            format!("A category with the slug `{}` exists.", row.slug),
        )),
    }
}

#[utoipa::path(post, path = "/api/organizers", tag = "catalogue", security(("bearer" = [])),
    request_body = CreateOrganizerRequest,
    responses(
        (status = 201, description = "Owned by the caller", body = OrganizerEnvelope),
        (status = 400, description = "VALIDATION_FAILED", body = Problem),
        (status = 401, body = Problem)))]
pub async fn create_organizer(rc: &mut RequestContext) -> ApiResult {
    let actor = rc.actor()?;
    rc.permit(&actor, None, &Action::CreateOrganizer)?;
    let (owner, _) = rc.require_user()?;
    let body: CreateOrganizerRequest = rc.json().await?;
    let organizer = parse_new_organizer(&body)?;
    let row = OrganizerRow {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: owner.into_inner(),
        name: organizer.name.into_inner(),
        description: organizer.description.into_inner(),
        logo_url: organizer.logo_url.map(|u| u.into_inner()),
        created_at: rc.now_ms,
        updated_at: rc.now_ms,
    };
    store::insert_organizer(&d1::db(&rc.env)?, &row).await?;
    json_response(
        201,
        &OrganizerEnvelope {
            organizer: Organizer::from(&row),
        },
    )
}

#[utoipa::path(get, path = "/api/organizers/{id}", tag = "catalogue",
    params(("id" = String, Path, description = "Organizer id")),
    responses((status = 200, body = OrganizerEnvelope), (status = 404, body = Problem)))]
pub async fn get_organizer(rc: &mut RequestContext) -> ApiResult {
    rc.permit(&rc.actor()?, None, &Action::ReadOrganizer)?;
    let id = OrganizerId::parse(rc.param("id")?).map_err(|_| ApiError::NotFound)?;
    match store::find_organizer(&d1::db(&rc.env)?, id.as_str()).await? {
        Some(row) => json_response(
            200,
            &OrganizerEnvelope {
                organizer: Organizer::from(&row),
            },
        ),
        None => Err(ApiError::NotFound),
    }
}
