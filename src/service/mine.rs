//! `我的`: a person's month — their records, what they closed for colleagues as 接手,
//! and where they stand against their monthly target.

use crate::domain::month::Month;
use crate::domain::rewards::{self, closer_is_paid};
use crate::service::access::Operation;
use crate::service::settlement::member_payee;
use crate::service::{Ctx, Outcome};
use crate::store::Conn;
use crate::store::records::{self, Closed, Summary};
use crate::store::settlement;

/// A person's month.
#[derive(Debug)]
pub struct MonthView {
    pub name: String,
    pub month: Month,
    /// Their own records, oldest first.
    pub own: Vec<Summary>,
    /// Records they closed as 接手 and are paid for.
    pub closed: Vec<Closed>,
    /// `(target, achieved)` for CS and TR members with a target.
    pub target: Option<(i64, i64)>,
}

/// The actor's month.
pub async fn month(ctx: &Ctx<'_>, conn: &mut Conn, month: Month) -> Outcome<MonthView> {
    let person = ctx.authorize(Operation::Mine)?;
    let (from, to) = month.range_ms();
    let own = records::reported_between(conn, &person.userid, from, to).await?;
    let mut closed = records::closed_between(conn, &person.userid, from, to).await?;
    closed.retain(|c| c.closer_class.is_some_and(|class| closer_is_paid(c.record.kind, class)));
    let target = match settlement::member(conn, &person.userid).await? {
        Some(member) => {
            let payee = member_payee(member, &|_, name: &str| name.to_owned());
            match rewards::target_of(&ctx.settings.targets, &payee, payee.class) {
                Some(target) if target > 0 => {
                    let achieved = settlement::achieved_by(conn, &payee.userid, payee.class, from, to).await?;
                    Some((target, achieved))
                }
                _ => None,
            }
        }
        None => None,
    };
    Ok(MonthView { name: person.name.clone(), month, own, closed, target })
}
