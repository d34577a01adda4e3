"""Wire formats of the agent API: a dump schema for every response (the OpenAPI document and clients
that check responses use them). The agent API takes no request bodies."""
from marshmallow import Schema, fields


class ReplySchema(Schema):
    case_number = fields.String(required=True)
    agent = fields.String(required=True, metadata={"description": "the village agent who submitted the case"})
    outcome = fields.String(required=True)
    item_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "to_reply | replied"})
    created_at = fields.DateTime(required=True)


class RepliesSchema(Schema):
    replies = fields.List(fields.Nested(ReplySchema), required=True)


class AgentStatsSchema(Schema):
    replies_owed = fields.Integer(required=True)
    agent_cases = fields.Integer(required=True)


# --- the monthly village table (村(社区)便民服务办理情况统计表) ------------------------------------

class VillageCountsSchema(Schema):
    services = fields.Integer(required=True, metadata={"description": "服务总数: every service logged"})
    submissions = fields.Integer(required=True, metadata={"description": "代办受理: accepted at the station"})
    refused = fields.Integer(required=True, metadata={"description": "不予代办: refused at the station"})
    help_only = fields.Integer(required=True, metadata={"description": "帮办: helped only, nothing submitted"})
    done_at_station = fields.Integer(required=True, metadata={"description": "站内办结: done at the station"})
    relayed = fields.Integer(required=True, metadata={"description": "报送: relayed to the town centre"})
    completed = fields.Integer(required=True, metadata={"description": "办结: relayed cases finished in the month"})
    replies = fields.Integer(required=True, metadata={"description": "回复: replies made in the month"})


class CategoryCountsSchema(VillageCountsSchema):
    category = fields.String(required=True, metadata={"description": "item category (事项类别)"})


class VillageRowsSchema(Schema):
    village = fields.String(required=True)
    name = fields.String(required=True)
    categories = fields.List(fields.Nested(CategoryCountsSchema), required=True)
    subtotal = fields.Nested(VillageCountsSchema, required=True, metadata={"description": "小计"})


class TownTableSchema(Schema):
    town = fields.String(required=True)
    name = fields.String(required=True)
    villages = fields.List(fields.Nested(VillageRowsSchema), required=True)
    by_category = fields.List(fields.Nested(CategoryCountsSchema), required=True)
    total = fields.Nested(VillageCountsSchema, required=True, metadata={"description": "合计"})


class ColumnSchema(Schema):
    key = fields.String(required=True)
    heading = fields.String(required=True)


class VillageReportSchema(Schema):
    title = fields.String(required=True)
    month = fields.String(required=True, metadata={"description": "YYYY-MM, of Asia/Shanghai dates"})
    town = fields.String(required=True, allow_none=True, metadata={"description": "the town asked for, if any"})
    village = fields.String(required=True, allow_none=True,
                            metadata={"description": "a village agent's own village: the table is only its rows"})
    catalog_version = fields.String(required=True)
    columns = fields.List(fields.Nested(ColumnSchema), required=True)
    categories = fields.List(fields.String(), required=True)
    towns = fields.List(fields.Nested(TownTableSchema), required=True)
    total = fields.Nested(VillageCountsSchema, required=True, allow_none=True,
                          metadata={"description": "全市合计, when no town was asked for"})
