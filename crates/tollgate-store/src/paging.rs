//! Keyset pagination: a page continues after the last row of the previous one, named by its
//! sort value and id, so reading page 200 costs what page 1 does and rows written meanwhile
//! never shift a page's start (as they would with `OFFSET`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{KeyRecord, SpendRecord, StoreError, TeamRecord, UserRecord};

/// How a list of keys, users or teams is sorted; the id breaks ties, in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// Newest first (the keys' usual order).
    Newest,
    /// Oldest first (the users' and teams' usual order).
    Oldest,
    /// By name, A to Z: a key's alias (its display name without one), a user's id, a team's
    /// alias (its id without one), in the database's collation.
    Name,
    /// Most spend (in the current budget period) first.
    Spend,
}

impl ListOrder {
    /// Every order, as lists offer them.
    pub const ALL: [ListOrder; 4] = [Self::Newest, Self::Oldest, Self::Name, Self::Spend];

    /// Its name in query strings: `newest`, `oldest`, `name`, `spend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Name => "name",
            Self::Spend => "spend",
        }
    }

    /// The order named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The sort value of a row, of the type its [`ListOrder`] sorts by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortValue {
    /// `created_at`, for [`ListOrder::Newest`] and [`ListOrder::Oldest`].
    Time(DateTime<Utc>),
    /// The name, for [`ListOrder::Name`].
    Text(String),
    /// The spend, for [`ListOrder::Spend`].
    Real(f64),
}

/// Where a keyset-paged list continues: the sort value and id of the last row of the
/// previous page. The next page holds the rows strictly after it in the list's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListCursor {
    /// The last row's sort value.
    pub value: SortValue,
    /// The last row's id (key hash, user id, team id).
    pub id: String,
}

impl ListCursor {
    /// The sort value as text for a query string (an RFC 3339 time with microseconds, a
    /// name, a number that reads back exactly).
    pub fn value_text(&self) -> String {
        match &self.value {
            SortValue::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            SortValue::Text(s) => s.clone(),
            SortValue::Real(v) => v.to_string(),
        }
    }

    /// A cursor of `order` from the text of [`ListCursor::value_text`] and an id; `None`
    /// if the text is not a value of that order's type.
    pub fn parse(order: ListOrder, value: &str, id: &str) -> Option<Self> {
        let value = match order {
            ListOrder::Newest | ListOrder::Oldest => {
                SortValue::Time(DateTime::parse_from_rfc3339(value).ok()?.with_timezone(&Utc))
            }
            ListOrder::Name => SortValue::Text(value.to_owned()),
            ListOrder::Spend => {
                SortValue::Real(value.parse().ok().filter(|v: &f64| v.is_finite())?)
            }
        };
        Some(Self { value, id: id.to_owned() })
    }

    /// `Invalid` unless the value is of the type `order` sorts by.
    pub(crate) fn check(&self, order: ListOrder) -> Result<(), StoreError> {
        let fits = matches!(
            (order, &self.value),
            (ListOrder::Newest | ListOrder::Oldest, SortValue::Time(_))
                | (ListOrder::Name, SortValue::Text(_))
                | (ListOrder::Spend, SortValue::Real(_))
        );
        if fits {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "the cursor does not continue a list sorted by {}",
                order.as_str()
            )))
        }
    }
}

fn cursor(
    order: ListOrder,
    created_at: DateTime<Utc>,
    name: &str,
    spend: f64,
    id: &str,
) -> ListCursor {
    let value = match order {
        ListOrder::Newest | ListOrder::Oldest => SortValue::Time(created_at),
        ListOrder::Name => SortValue::Text(name.to_owned()),
        ListOrder::Spend => SortValue::Real(spend),
    };
    ListCursor { value, id: id.to_owned() }
}

impl KeyRecord {
    /// The cursor that continues a list sorted by `order` after this key.
    pub fn cursor(&self, order: ListOrder) -> ListCursor {
        let name = self.key_alias.as_deref().unwrap_or(&self.key_name);
        cursor(order, self.created_at, name, self.spend, &self.token_hash)
    }
}

impl UserRecord {
    /// The cursor that continues a list sorted by `order` after this user.
    pub fn cursor(&self, order: ListOrder) -> ListCursor {
        cursor(order, self.created_at, &self.user_id, self.spend, &self.user_id)
    }
}

impl TeamRecord {
    /// The cursor that continues a list sorted by `order` after this team.
    pub fn cursor(&self, order: ListOrder) -> ListCursor {
        let name = self.team_alias.as_deref().unwrap_or(&self.team_id);
        cursor(order, self.created_at, name, self.spend, &self.team_id)
    }
}

/// Where a newest-first list of spend records continues: the last record of the previous
/// page. Records are ordered by `(started_at, request_id)`, compared as a pair, so records
/// that started in the same microsecond are neither skipped nor repeated across pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendCursor {
    /// The last record's start.
    pub started_at: DateTime<Utc>,
    /// The last record's id.
    pub request_id: String,
}

impl SpendCursor {
    /// The cursor after `record`.
    pub fn after(record: &SpendRecord) -> Self {
        Self { started_at: record.started_at, request_id: record.request_id.clone() }
    }
}

/// HTTP statuses from `min` to `max`, both included: `429..=429` for one status, `500..=599`
/// for a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRange {
    /// The lowest status.
    pub min: i32,
    /// The highest status.
    pub max: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_reads_back_for_each_order() {
        let t = DateTime::parse_from_rfc3339("2026-03-10T12:00:00.123456Z").unwrap().to_utc();
        let cases = [
            (ListOrder::Newest, SortValue::Time(t)),
            (ListOrder::Name, SortValue::Text("a b/c&d".into())),
            (ListOrder::Spend, SortValue::Real(0.1 + 0.2)),
        ];
        for (order, value) in cases {
            let c = ListCursor { value, id: "id-1".into() };
            assert_eq!(ListCursor::parse(order, &c.value_text(), "id-1"), Some(c.clone()));
            assert!(c.check(order).is_ok());
        }
        assert_eq!(ListCursor::parse(ListOrder::Oldest, "yesterday", "x"), None);
        assert_eq!(ListCursor::parse(ListOrder::Spend, "NaN", "x"), None);
        let text = ListCursor { value: SortValue::Text("x".into()), id: "x".into() };
        assert!(text.check(ListOrder::Spend).is_err());
    }

    #[test]
    fn orders_have_names() {
        for o in ListOrder::ALL {
            assert_eq!(ListOrder::parse(o.as_str()), Some(o));
        }
        assert_eq!(ListOrder::parse("random"), None);
    }
}
