"""The seed's fleet (seed 003): the agents scripts/start.sh and docker-compose.yml run, and the capability mix
POST /pool/initialize gives the agents it starts, in this order."""

from shared.models import AgentCapability

SEED_FLEET: dict[str, tuple[AgentCapability, ...]] = {
    "agent1": (AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION),
    "agent2": (AgentCapability.WEB_SCRAPING, AgentCapability.API_INTEGRATION),
    "agent3": (AgentCapability.FILE_PROCESSING, AgentCapability.DATABASE_OPERATIONS),
    "agent4": (AgentCapability.CODE_GENERATION, AgentCapability.API_INTEGRATION),
    "agent5": (AgentCapability.DATA_ANALYSIS, AgentCapability.DATABASE_OPERATIONS),
}
SEED_CAPABILITY_MIX: list[tuple[AgentCapability, ...]] = list(SEED_FLEET.values())
