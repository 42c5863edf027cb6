//! The register of old channels (老渠道): channels that existed before the programme.
//! Placements through them are paid at the old-channel rate. `[channels] existing`
//! seeds it; Talent Recruitment's confirmers add to it with `登记老渠道`. A name that is
//! (or looks like) a channel already known is refused by the same normaliser as first
//! claim wins.

use crate::domain::names::{core_name, looks_alike};
use crate::domain::org::DeptKind;
use crate::domain::text::BoundedText;
use crate::service::access::Operation;
use crate::service::{Ctx, Outcome, refuse};
use crate::store::Conn;
use crate::store::events::{self, NewEvent};
use crate::store::records::{self, Family, Origin};

/// `登记老渠道 名称=…`.
pub async fn register_old(ctx: &Ctx<'_>, conn: &mut Conn, name: &BoundedText) -> Outcome {
    let person = ctx.authorize(Operation::RegisterChannel)?;
    if person.kind != DeptKind::Tr {
        return refuse("「登记老渠道」须由招商引才事业部的确认人操作。");
    }
    let key = core_name(name.as_str());
    if let Some(known) = records::subject_by_name(conn, Family::Channel, &key).await? {
        return refuse(match known.origin {
            Origin::Existing => format!("「{}」已登记为老渠道，无需重复登记。", known.name),
            Origin::Reported => format!("「{}」已作为新渠道报备，不能再登记为老渠道。", known.name),
        });
    }
    let similar = records::look_alike_subjects(conn, Family::Channel, &key).await?;
    if let Some(other) = similar.iter().find(|s| looks_alike(&key, &s.name_key)) {
        return refuse(format!("「{name}」与已有渠道「{}」名称相近，视为同一渠道，不予重复登记。", other.name));
    }
    let id = records::insert_subject(conn, Family::Channel, name.as_str(), &key, None, Origin::Existing, ctx.now_ms())
        .await?;
    let event = NewEvent::new(&person.userid, "subject", id, "old_channel_registered").to(name.as_str());
    events::append(conn, ctx.now_ms(), event).await?;
    Ok(format!("已登记老渠道「{name}」：经该渠道的安置上岗按老渠道标准计算奖励。"))
}
