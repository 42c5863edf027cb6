//! The domain's enums as stored: each is a TEXT column holding its code, and decoding
//! a value the enum does not know is an error (never a silent default).

use crate::domain::contest::ContestState;
use crate::domain::kind::RecordKind;
use crate::domain::org::{DeptKind, Level};
use crate::domain::record::{LeadStages, Mode, RecordState};
use crate::store::appeals::AppealState;
use crate::store::cards::Purpose;
use crate::store::contests::MemberSource;
use crate::store::outbox::{Api, Status};
use crate::store::records::{Family, FlagKind, Origin, Stage};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A value whose column holds a short code.
pub trait Coded: Sized + Copy + 'static {
    /// What the enum is called in an error.
    const NAME: &'static str;
    fn code(self) -> &'static str;
    fn from_code(code: &str) -> Option<Self>;
}

/// Decodes a code, refusing one the enum does not know.
pub fn decode_code<T: Coded>(code: &str) -> Result<T, BoxDynError> {
    T::from_code(code).ok_or_else(|| format!("unknown {} {code:?} in the database", T::NAME).into())
}

macro_rules! coded {
    ($($ty:ty => $name:literal, $code:ident, $parse:ident;)*) => {$(
        impl Coded for $ty {
            const NAME: &'static str = $name;
            fn code(self) -> &'static str {
                <$ty>::$code(self)
            }
            fn from_code(code: &str) -> Option<Self> {
                <$ty>::$parse(code)
            }
        }

        impl<DB: Database> Type<DB> for $ty
        where
            for<'a> &'a str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <&str as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <&str as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, DB>>::encode(Coded::code(*self), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                decode_code(<&str as Decode<'r, DB>>::decode(value)?)
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                decode_code(value.as_str()?).map_err(rusqlite::types::FromSqlError::Other)
            }
        }
    )*};
}

coded! {
    RecordKind => "record kind", code, parse;
    RecordState => "record state", code, parse;
    Mode => "mode", code, parse;
    ContestState => "contest state", code, parse;
    DeptKind => "department kind", as_str, parse;
    Level => "level", as_str, parse;
    LeadStages => "stage rule", code, parse;
    Api => "outbox api", code, parse;
    Purpose => "card purpose", code, parse;
    Family => "subject family", code, parse;
    Origin => "subject origin", code, parse;
    Status => "outbox status", code, parse;
    MemberSource => "member source", code, parse;
    Stage => "reminder stage", code, parse;
    FlagKind => "flag kind", code, parse;
    AppealState => "appeal state", code, parse;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_an_unknown_one_is_an_error() {
        for kind in RecordKind::ALL {
            assert_eq!(decode_code::<RecordKind>(kind.code()).unwrap(), kind);
        }
        for state in RecordState::ALL {
            assert_eq!(decode_code::<RecordState>(state.code()).unwrap(), state);
        }
        for state in ContestState::ALL {
            assert_eq!(decode_code::<ContestState>(state.code()).unwrap(), state);
        }
        let error = decode_code::<RecordKind>("lead_d").unwrap_err().to_string();
        assert!(error.contains("unknown record kind \"lead_d\""), "{error}");
        assert!(decode_code::<Mode>("").is_err());
    }
}
