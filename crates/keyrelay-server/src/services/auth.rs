//! Who is calling: the operator (admin token) or a project (secret key).
//! Keys are stored as SHA-256 hashes and compared in constant time.

use keyrelay_store::Store;
use keyrelay_vault::{AdminToken, TokenHash, token};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};

const ADMIN_HASH_META: &str = "admin_token_sha256";
pub const ADMIN_TOKEN_PREFIX: &str = "kr_admin_";
pub const SECRET_KEY_PREFIX: &str = "kr_sk_";

/// The admin token's hash, and the token itself when this call generated it
/// (so the caller can print it once). A configured token wins over a stored one.
pub async fn ensure_admin_token(
    store: &dyn Store,
    configured: Option<&AdminToken>,
) -> ServiceResult<(TokenHash, Option<AdminToken>)> {
    if let Some(configured) = configured {
        return Ok((TokenHash::of(configured.expose_secret()), None));
    }
    if let Some(stored) = stored_admin_hash(store).await? {
        return Ok((stored, None));
    }
    let fresh = AdminToken::new(token::generate_token(ADMIN_TOKEN_PREFIX));
    let hash = TokenHash::of(fresh.expose_secret());
    if store
        .set_meta_if_absent(ADMIN_HASH_META, &hex::encode(hash.as_bytes()))
        .await?
    {
        return Ok((hash, Some(fresh)));
    }
    // Another instance generated one at the same moment: use theirs.
    let stored = stored_admin_hash(store).await?.ok_or_else(|| {
        ServiceError::invalid("internal_error", "admin token hash vanished while starting")
    })?;
    Ok((stored, None))
}

async fn stored_admin_hash(store: &dyn Store) -> ServiceResult<Option<TokenHash>> {
    let Some(hex) = store.get_meta(ADMIN_HASH_META).await? else {
        return Ok(None);
    };
    let bytes = hex::decode(&hex).map_err(|_| {
        keyrelay_store::StoreError::Corrupt("the stored admin token hash is not hex".into())
    })?;
    Ok(TokenHash::from_slice(&bytes))
}

/// Checks the operator's admin token.
pub fn authenticate_admin(app: &App, bearer: &str) -> ServiceResult<()> {
    if TokenHash::of(bearer).ct_eq(&app.admin_token_hash) {
        return Ok(());
    }
    let hint = if bearer.starts_with(SECRET_KEY_PREFIX) {
        " (a project secret key was sent; admin routes take the admin token printed at first start)"
    } else {
        ""
    };
    Err(ServiceError::unauthorized(
        "invalid_api_key",
        format!("the admin token is not valid{hint}"),
    ))
}

/// Finds the project a secret key belongs to.
pub async fn authenticate_project(app: &App, bearer: &str) -> ServiceResult<String> {
    let hash = TokenHash::of(bearer);
    if let Some(record) = app.store.find_secret_key(hash.as_bytes()).await? {
        let stored = TokenHash::from_slice(&record.hash);
        if stored.is_some_and(|stored| stored.ct_eq(&hash)) {
            return Ok(record.project_id);
        }
    }
    let hint = if bearer.starts_with(ADMIN_TOKEN_PREFIX) {
        " (the admin token was sent; project routes take a project secret key, kr_sk_…)"
    } else {
        "; check that it was copied whole and has not been deleted"
    };
    Err(ServiceError::unauthorized(
        "invalid_api_key",
        format!("the secret key is not valid{hint}"),
    ))
}
